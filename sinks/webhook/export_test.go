package webhook

// Internals the external tests reach.
var (
	ParseRetryAfter = parseRetryAfter
	ModuleVersion   = moduleVersion
)

// MaxRetryAfter caps a parsed Retry-After.
const MaxRetryAfter = maxRetryAfter
