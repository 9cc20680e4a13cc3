package engine

import "context"

// DeliverGroups delivers every dedup group whose count grew since its last
// delivery, as Close does, without closing anything: the open runs stay
// open for Checkpoint, and the groups stay open in the store, where an
// engine built later on it (a server started again after a stop) goes on
// counting them and delivers them again, under the same id, with their
// larger count. A server that stops calls it so that the counts so far
// are not held back until the next run.
func (e *Engine) DeliverGroups(ctx context.Context) error {
	if err := e.Settle(ctx); err != nil {
		return err
	}
	for _, d := range e.dedups {
		if err := d.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}
