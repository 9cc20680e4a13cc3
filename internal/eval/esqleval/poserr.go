package esqleval

import (
	"errors"

	"github.com/kanon-dev/kanon/internal/pos"
)

// asPosError finds the first positioned error in err.
func asPosError(err error) (*pos.Error, bool) {
	var pe *pos.Error
	if errors.As(err, &pe) {
		return pe, true
	}
	return nil, false
}
