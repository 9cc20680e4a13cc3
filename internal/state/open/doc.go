// Package open opens the state store a command line or configuration file
// names: the bbolt file under a state directory (the default), a Redis
// server shared by replicas (a redis:// or rediss:// URL; see
// redis.ParseURL), or memory. cmd/kanon only wires its flags to Config.
package open
