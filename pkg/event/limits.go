package event

// Limits of an account's fields, part of the events' contract beside the schemas (Avro cannot
// state a length): the Account Service refuses a registration beyond them, and a service that
// consumes an AccountCreated beyond them parks it as invalid.
const (
	// MaxUsername is the longest username, in characters (not bytes).
	MaxUsername = 64
	// MaxEmail is the longest email address, in bytes: RFC 5321's 256-byte path without its
	// angle brackets.
	MaxEmail = 254
)
