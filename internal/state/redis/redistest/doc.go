// Package redistest starts real redis-server processes for tests: each on
// a free loopback port, in a temporary directory, without persistence, so
// that test runs never share data with each other or with a server the
// machine already runs on the standard port. A missing redis-server fails
// the test with a message saying how to install it; it never skips.
package redistest
