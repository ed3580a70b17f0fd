/**
 * Failure types shared by workflows, activities and the API. The API's error funnel maps each
 * type to an HTTP status; anything else is a 500.
 */
export const FailureType = {
  /** The command is not legal in the current state (409, the state goes in details). */
  wrongState: 'wrong_state',
  /** The actor may not do this here, e.g. approve their own submission (403). */
  forbiddenActor: 'forbidden_actor',
  /** A duplicate of something unique, e.g. a version number (409). */
  conflict: 'conflict',
  /** The referenced thing does not exist in this workflow (404). */
  notFound: 'not_found',
  /** The stored package failed validation (non-retryable). */
  packageInvalid: 'package_invalid',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];
