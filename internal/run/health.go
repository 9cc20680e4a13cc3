package run

// Health is what a source whose input can be out of reach (a broker)
// implements: Healthy says why it cannot read now, or nil. kanon serve's
// /readyz fails while a source is not healthy.
type Health interface {
	Healthy() error
}
