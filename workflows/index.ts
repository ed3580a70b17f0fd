export { miniProgramEntity } from './mini-program.js';
export { releasePipeline } from './release.js';
export { pingWorkflow } from './ping.js';
export { memberInvitation } from './invitation.js';
export { accountApplication, passwordResetMail } from './account-application.js';
export { developerAuthorization } from './authorization.js';
export { featureChange, featureActivation } from './feature-change.js';
export { feedbackReply } from './feedback.js';
export { crashAlert } from './crash-alert.js';
