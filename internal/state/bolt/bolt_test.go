package bolt_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/statetest"
)

var ctx = context.Background()

func open(t testing.TB, dir string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checked closes s after checking its file's consistency.
func checked(t *testing.T, s *bolt.Store) {
	t.Helper()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestConformance(t *testing.T) {
	dirs := map[state.Store]string{}
	newStore := func(t *testing.T) state.Store {
		dir := t.TempDir()
		s := open(t, dir, bolt.Options{SweepBatch: 700})
		t.Cleanup(func() {
			// Every test leaves a consistent file behind.
			if s2, err := bolt.Open(dir, bolt.Options{}); err == nil {
				checked(t, s2)
				s2.Close()
			}
		})
		dirs[s] = dir
		return s
	}
	reopen := func(t *testing.T, s state.Store) state.Store {
		dir := dirs[s]
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := open(t, dir, bolt.Options{})
		dirs[s2] = dir
		return s2
	}
	statetest.Run(t, newStore, statetest.WithReopen(reopen))
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, bolt.Options{})
	start := time.Now()
	_, err := bolt.Open(dir, bolt.Options{LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	want := "state directory " + dir + " is in use by another kanon process"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	// bbolt polls the lock every 50ms and gives up one poll early.
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("gave up after %s, well before the lock timeout of 300ms", d)
	}
}

func TestLockReleasedOnClose(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, bolt.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, dir, bolt.Options{LockTimeout: 100 * time.Millisecond})
}

func TestSchemaMismatch(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, bolt.Options{})
	s.Close()
	db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 99))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = bolt.Open(dir, bolt.Options{})
	if !errors.Is(err, state.ErrSchema) {
		t.Fatalf("open: %v, want ErrSchema", err)
	}
	if !strings.Contains(err.Error(), "schema version 99, this kanon reads version 1") {
		t.Fatalf("error %q does not name both versions", err)
	}
	// The failed open released the lock.
	if _, err := bolt.Open(dir, bolt.Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, state.ErrSchema) {
		t.Fatalf("second open: %v, want ErrSchema again", err)
	}
}

func TestNotABoltFile(t *testing.T) {
	dir := t.TempDir()
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, bolt.FileName), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(dir, bolt.Options{}); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("open of a junk file: %v, want ErrCorrupt", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []bolt.Options{{LockTimeout: -1}, {SweepBatch: -1}} {
		if _, err := bolt.Open(t.TempDir(), o); err == nil {
			t.Errorf("Open with %+v succeeded", o)
		}
	}
}

func TestCheckFindsBrokenIndex(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, bolt.Options{})
	if err := state.Put(ctx, s, []byte("k"), []byte("v"), time.Unix(100, 0)); err != nil {
		t.Fatal(err)
	}
	checked(t, s)
	s.Close()
	db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("expiry")).Delete(state.AppendExpiryIndexKey(nil, state.UnixNano(time.Unix(100, 0)), []byte("k")))
	})
	db.Close()
	s = open(t, dir, bolt.Options{})
	if err := s.Check(ctx); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("check of a file missing an index entry: %v, want ErrCorrupt", err)
	}
}

// The crash test re-runs the test binary as a child that commits in a loop
// and reports each commit on stdout, kills it with SIGKILL at a random point,
// and checks that the file opens, is consistent, and holds every commit
// reported and no part of any other.
const crashChildEnv = "KANON_STATE_BOLT_CRASH_CHILD"

func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 8))
	acked := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 20 + r.IntN(60)
		sc := bufio.NewScanner(out)
		seen := 0
		for sc.Scan() {
			n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed "))
			if err != nil {
				continue // test framework output
			}
			acked, seen = n, seen+1
			if seen == killAt {
				// Let the child get into its next commit.
				time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
				cmd.Process.Kill() // SIGKILL
				break
			}
		}
		cmd.Wait()
		if seen < killAt {
			t.Fatalf("round %d: child stopped after %d commits, before it was killed", round, seen)
		}
		verifyCrashed(t, dir, acked)
	}
}

// crashChild commits transaction after transaction until it is killed. Commit
// i writes key k/i with a value of a few KiB, deletes key k/(i-50), and sets
// "counter" to i.
func crashChild(dir string) {
	s, err := bolt.Open(dir, bolt.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	i := 0
	if v, err := s.Get(ctx, []byte("counter"), time.Time{}); err == nil {
		i, _ = strconv.Atoi(string(v))
	}
	r := rand.New(rand.NewPCG(uint64(i), 9))
	for {
		i++
		err := s.Update(ctx, time.Time{}, func(tx state.Tx) error {
			val := make([]byte, 1024+r.IntN(8192))
			for j := range val {
				val[j] = byte(i + j)
			}
			if err := tx.Put([]byte(fmt.Sprintf("k/%08d", i)), val, time.Unix(int64(i), 0)); err != nil {
				return err
			}
			if err := tx.Delete([]byte(fmt.Sprintf("k/%08d", i-50))); err != nil {
				return err
			}
			return tx.Put([]byte("counter"), []byte(strconv.Itoa(i)), time.Time{})
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("committed %d\n", i)
	}
}

func verifyCrashed(t *testing.T, dir string, acked int) {
	t.Helper()
	s, err := bolt.Open(dir, bolt.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	checked(t, s)
	v, err := s.Get(ctx, []byte("counter"), time.Time{})
	if err != nil {
		t.Fatalf("counter after SIGKILL: %v", err)
	}
	c, _ := strconv.Atoi(string(v))
	if c < acked {
		t.Fatalf("counter %d after SIGKILL, but commit %d was acknowledged", c, acked)
	}
	t.Logf("after SIGKILL: counter %d, last acknowledged %d", c, acked)
	var keys []string
	s.Scan(ctx, []byte("k/"), time.Time{}, func(e state.Entry) error {
		keys = append(keys, string(e.Key))
		i, _ := strconv.Atoi(strings.TrimPrefix(string(e.Key), "k/"))
		if len(e.Value) < 1024 || e.Value[0] != byte(i) || !e.Expiry.Equal(time.Unix(int64(i), 0)) {
			t.Errorf("key %s has a wrong value or expiry", e.Key)
		}
		return nil
	})
	// Exactly the keys of commits c-49..c: each commit is all or nothing.
	lo := max(1, c-49)
	if len(keys) != c-lo+1 || keys[0] != fmt.Sprintf("k/%08d", lo) || keys[len(keys)-1] != fmt.Sprintf("k/%08d", c) {
		t.Fatalf("after SIGKILL at counter %d, keys are %d from %s to %s; want k/%08d..k/%08d", c, len(keys), keys[0], keys[len(keys)-1], lo, c)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Entries != int64(len(keys)+1) {
		t.Fatalf("stats after SIGKILL = %+v, %v; want %d entries", st, err, len(keys)+1)
	}
}
