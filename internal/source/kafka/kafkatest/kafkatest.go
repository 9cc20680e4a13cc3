// Package kafkatest runs kfake — franz-go's in-process implementation of
// the Kafka protocol (no Kafka broker can run here) — for the tests of
// the Kafka source and of kanon serve on it: a cluster with one topic on
// a loopback port, optionally with TLS (a certificate for 127.0.0.1
// signed by a CA of the test's own) and SASL users.
package kafkatest

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/server/servertest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a running kfake cluster with one topic.
type Cluster struct {
	*kfake.Cluster
	Topic      string
	Partitions int32
	// CAFile is the CA of the cluster's certificate, with TLS.
	CAFile string
	// Client are the options a producing client needs (TLS, SASL).
	Client []kgo.Opt
}

// Start starts a cluster of one broker with topic in partitions; opts are
// kfake's (SASL users), client the producer's matching options.
func Start(t testing.TB, topic string, partitions int32, opts []kfake.Opt, client ...kgo.Opt) *Cluster {
	t.Helper()
	c := &Cluster{Topic: topic, Partitions: partitions, Client: client}
	kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.Cluster = kc
	t.Cleanup(kc.Close)
	return c
}

// StartTLS is Start with TLS: the broker's certificate is for 127.0.0.1,
// signed by the CA in CAFile.
func StartTLS(t testing.TB, topic string, partitions int32, opts []kfake.Opt, client ...kgo.Opt) *Cluster {
	t.Helper()
	pki := servertest.WritePKI(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	client = append(client, kgo.DialTLSConfig(pki.ClientTLS("")))
	c := Start(t, topic, partitions, opts, client...)
	c.CAFile = pki.CAFile
	return c
}

// Addr is the broker's address.
func (c *Cluster) Addr() string { return c.ListenAddrs()[0] }

// Produce writes values to the topic, value i to partition i modulo the
// partitions, and waits until each is acknowledged.
func (c *Cluster) Produce(t testing.TB, values ...[]byte) {
	t.Helper()
	n := 0
	c.ProduceBy(t, func([]byte) int32 { n++; return int32(n-1) % c.Partitions }, values...)
}

// ProduceBy is Produce with value v written to partition part(v).
func (c *Cluster) ProduceBy(t testing.TB, part func(v []byte) int32, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addr()), kgo.DefaultProduceTopic(c.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, c.Client...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Value: v, Partition: part(v)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Committed returns the group's committed offset of each partition.
func (c *Cluster) Committed(group string) map[int32]int64 {
	out := map[int32]int64{}
	if gi := c.GroupInfo(group); gi != nil {
		for p, gc := range gi.Commits[c.Topic] {
			out[p] = gc.Offset
		}
	}
	return out
}

// Ends returns the end offset of each partition.
func (c *Cluster) Ends() map[int32]int64 {
	out := map[int32]int64{}
	for _, pi := range c.PartitionInfos(c.Topic) {
		out[pi.Partition] = pi.HighWatermark
	}
	return out
}

// WaitCommitted waits until the group has committed every partition to
// its end, and fails the test after timeout.
func (c *Cluster) WaitCommitted(t testing.TB, group string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ends, got := c.Ends(), c.Committed(group)
		all := true
		for p, e := range ends {
			if e > 0 && got[p] != e {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s committed %v, the partitions end at %v", group, got, ends)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitMembers waits until the group has n members, each assigned a
// partition at least, and fails the test after timeout.
func (c *Cluster) WaitMembers(t testing.TB, group string, n int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := c.WaitGroupInfo(ctx, group, func(gi *kfake.GroupInfo) bool {
		if gi.State != "Stable" || len(gi.Members) != n {
			return false
		}
		for i := range gi.Members {
			if gi.Members[i].NumAssigned() == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		gi := c.GroupInfo(group)
		t.Fatalf("group %s has not %d members with partitions: %+v (%v)", group, n, gi, err)
	}
}
