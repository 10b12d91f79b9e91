// Package compare measures registration in its two modes, choreography (the Account Service
// emits AccountCreated and the User and Notification Services react) and orchestration (the
// Account Service calls AddUser and SendEmail synchronously), with the Notification Service down
// and then slow. `make compare` runs it and prints one table; see the README's "Orchestration
// beside choreography".
//
// It has no code of its own: the driver is a test (compare_test.go), so that it has the test
// SMTP server and cleanup of the processes it starts. Without CHOREO_COMPARE_N it registers a
// handful of accounts per run, which keeps the driver working as part of the suite.
package compare
