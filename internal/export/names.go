package export

// Names are the error names a step or a job can end with: the README's
// error table lists each (beside the state machine's own guards), and the
// state machine's Retry lists name no other.
var Names = []string{
	InputInvalid, ConfigInvalid, SecretUnavailable, SecretInvalid,
	AtlasRateLimited, AtlasServerError, AtlasStreamBroken, AtlasNotFound, AtlasUnauthorized,
	AtlasForbidden, AtlasBadRequest, AtlasError, AtlasReportFailed,
	PollAttemptsExhausted, StorageError, ExportWarnings, NoResult,
}

// Retryable are the names worth another try of the same step: every Task
// state retries exactly these (and Lambda's own service errors), and the
// README's error table marks exactly these retryable.
var Retryable = []string{AtlasRateLimited, AtlasServerError, AtlasStreamBroken, StorageError}
