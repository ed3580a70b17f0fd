export { miniProgramEntity } from './mini-program.js';
export { releasePipeline } from './release.js';
export { pingWorkflow } from './ping.js';
export { memberInvitation } from './invitation.js';
export { accountApplication, passwordResetMail } from './account-application.js';
export { developerAuthorization } from './authorization.js';
