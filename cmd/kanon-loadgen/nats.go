package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/loadgen"
)

// publishTimeout bounds the wait for the stream's acknowledgements.
const publishTimeout = 2 * time.Minute

// natsTarget is the server and subject of -nats nats://HOST:PORT/SUBJECT.
func natsTarget(raw string) (server, subject string, err error) {
	u, err := url.Parse(raw)
	if err == nil && (u.Scheme != "nats" && u.Scheme != "tls" || u.Host == "") {
		err = errors.New("want nats://HOST:PORT/SUBJECT")
	}
	if err == nil {
		subject = strings.TrimPrefix(u.Path, "/")
		if subject == "" || strings.ContainsAny(subject, " /*>") {
			err = fmt.Errorf("want nats://HOST:PORT/SUBJECT, a subject such as audit.lab, got %q", subject)
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("cannot parse -nats %q: %w", raw, err)
	}
	return u.Scheme + "://" + u.Host, subject, nil
}

// publish generates the log (or reads p.from) and publishes it to a JetStream subject,
// p.perMessage events (JSON lines) a message, and waits until the stream
// has stored every message. With p.natsStream, the stream of that name
// capturing the subject is created first unless it exists.
func (p params) publish() (loadgen.Stats, error) {
	server, subject, err := natsTarget(p.nats)
	if err != nil {
		return loadgen.Stats{}, err
	}
	next, stats, err := p.messages()
	if err != nil {
		return loadgen.Stats{}, err
	}
	nc, err := alert.NATSDial{URL: server}.Connect()
	if err != nil {
		return loadgen.Stats{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256), jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		return loadgen.Stats{}, fmt.Errorf("cannot use JetStream: %w", err)
	}
	if p.natsStream != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: p.natsStream, Subjects: []string{subject}})
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return loadgen.Stats{}, fmt.Errorf("cannot create stream %s: %w", p.natsStream, err)
		}
	}
	var acks []jetstream.PubAckFuture
	for {
		msg, err := next()
		if err != nil {
			return stats(), err
		}
		if msg == nil {
			break
		}
		f, err := js.PublishAsync(subject, msg)
		if err != nil {
			return stats(), fmt.Errorf("cannot publish to %s: %w", subject, err)
		}
		acks = append(acks, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(publishTimeout):
		return stats(), fmt.Errorf("%s: %d messages not acknowledged after %v", subject, js.PublishAsyncPending(), publishTimeout)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return stats(), fmt.Errorf("cannot publish to %s: %w", subject, err)
		}
	}
	return stats(), nil
}

// messages returns a function giving the next message to publish (nil
// after the last) and one giving the statistics of what it gave: the
// generated log, or with p.from the lines of that file.
func (p params) messages() (next func() ([]byte, error), stats func() loadgen.Stats, err error) {
	if p.from == "" {
		g, err := loadgen.NewGenerator(p.opts)
		if err != nil {
			return nil, nil, err
		}
		done := 0
		return func() ([]byte, error) {
			var msg []byte // a slice of its own: the publisher holds it until acknowledged
			for n := min(p.perMessage, p.opts.Events-done); n > 0; n-- {
				msg = g.AppendEvent(msg)
				done++
			}
			return msg, nil
		}, g.Stats, nil
	}
	f, err := os.Open(p.from)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot publish: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	var st loadgen.Stats
	eof := false
	return func() ([]byte, error) {
			var msg []byte
			for n := 0; n < p.perMessage && !eof; n++ {
				line, err := br.ReadSlice('\n')
				for errors.Is(err, bufio.ErrBufferFull) {
					msg = append(msg, line...)
					line, err = br.ReadSlice('\n')
				}
				msg = append(msg, line...)
				if len(line) > 0 {
					st.Events++
				}
				if err == io.EOF {
					eof = true
					f.Close()
					break
				}
				if err != nil {
					return nil, fmt.Errorf("cannot read %s: %w", p.from, err)
				}
			}
			st.Bytes += int64(len(msg))
			st.EventBytes = st.Bytes
			if len(msg) == 0 {
				return nil, nil
			}
			return msg, nil
		}, func() loadgen.Stats {
			return st
		}, nil
}
