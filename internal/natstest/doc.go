// Package natstest starts the real servers that tests of kanon's NATS
// output and source use: a nats-server with JetStream, on a free loopback
// port and a store directory of the test's own, so that test runs never
// share data with each other or with a nats-server the machine already
// runs on the standard port. A missing nats-server binary fails the
// test: it is never skipped (Debian's package nats-server has it).
package natstest
