package esqleval

import (
	"fmt"
	"time"
)

// DefaultMemoryBudget is the state budget of a program unless
// WithMemoryBudget sets another.
const DefaultMemoryBudget = 64 << 20

// DefaultResultLimit is the number of rows a result is cut to when the query
// does not end with LIMIT, as ES|QL's implicit LIMIT 1000.
const DefaultResultLimit = 1000

// DefaultPrecisionThreshold is COUNT_DISTINCT's precision threshold when the
// query gives none, as in Elasticsearch.
const DefaultPrecisionThreshold = 3000

// MaxPrecisionThreshold caps COUNT_DISTINCT's precision threshold, as in
// Elasticsearch.
const MaxPrecisionThreshold = 40000

// Env is the evaluation context of a program: what the query may read
// besides its rows. Evaluation never reads the clock.
type Env struct {
	// Now is the value of NOW(): the engine sets it to the event time or the
	// end of the window being evaluated. NOW() is null when Now is zero.
	Now time.Time
}

// Option configures Compile. Options are validated when applied.
type Option func(*options) error

type options struct {
	budget int64
	name   string
	limit  int
}

// WithMemoryBudget sets the number of bytes a program's state (groups,
// distinct sets, collected rows) may use; exceeding it is an error wrapping
// ErrBudgetExceeded that names the budget.
func WithMemoryBudget(bytes int64) Option {
	return func(o *options) error {
		if bytes <= 0 {
			return fmt.Errorf("esqleval: memory budget must be positive, got %d", bytes)
		}
		o.budget = bytes
		return nil
	}
}

// WithName names the program (usually by its rule) in budget errors.
func WithName(name string) Option {
	return func(o *options) error {
		o.name = name
		return nil
	}
}

// WithResultLimit sets the implicit row limit of results of queries that do
// not end with LIMIT (DefaultResultLimit); 0 disables it.
func WithResultLimit(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("esqleval: result limit must not be negative, got %d", n)
		}
		o.limit = n
		return nil
	}
}
