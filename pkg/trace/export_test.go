package trace

// WithRecordsRead calls f with the number of records each pass reads, so that tests can assert
// that a trace reads a window and not the topics whole.
func WithRecordsRead(f func(int)) Option { return func(o *options) { o.recordsOf = f } }
