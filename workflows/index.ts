export { miniProgramEntity } from './mini-program.js';
export { releasePipeline } from './release.js';
export { pingWorkflow } from './ping.js';
