// Package alerttest holds what tests of kanon's alert outputs share
// besides the servers they deliver to (the nats-server is started by
// internal/natstest, Kafka is franz-go's in-process kfake): a free
// loopback port for a server of the test's own.
package alerttest
