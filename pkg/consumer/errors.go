package consumer

import "errors"

// ErrPermanent is wrapped by errors that retrying cannot fix: an invalid event, a broken
// business rule. Test for it with errors.Is; make one with Permanent.
var ErrPermanent = errors.New("permanent failure")

// ErrTooLarge is the decode error of a record whose value exceeds the runner's MaxRecordBytes.
var ErrTooLarge = errors.New("record larger than the handler accepts")

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// Permanent marks err as one that retrying cannot fix: the record is parked at once instead of
// being retried. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether a handler's error is permanent. Errors marked with Permanent,
// panics and undeclared emits are; everything else (a dependency down, a timeout, an error
// nobody classified) is transient: retried with backoff, within the runner's RetryPolicy,
// and parked when that is exhausted. Erring on the side of retrying costs time, never an event.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrPermanent) || errors.Is(err, ErrPanic) || errors.Is(err, ErrUndeclaredEmit)
}
