package run

import "fmt"

// Health is a part kanon depends on that can say whether it is reachable
// now: the shared state store, a broker source's connection. Healthy
// returns nil, or why the part cannot be used.
type Health interface {
	Healthy() error
}

// healthCheck is a part watched by Readiness, with its name.
type healthCheck struct {
	name string
	h    Health
}

// Watch adds h, named name, to the parts Readiness checks (a source
// adds itself when it starts).
func (d *Driver) Watch(name string, h Health) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checks = append(d.checks, healthCheck{name, h})
}

// Readiness says why this serve should take no traffic now (kanon serve's
// /readyz): the driver's Health, then the state store if it can tell
// (Health), then every watched part; nil when all are well.
func (d *Driver) Readiness() error {
	if err := d.Health(); err != nil {
		return err
	}
	d.mu.RLock()
	checks := append([]healthCheck(nil), d.checks...)
	d.mu.RUnlock()
	if h, ok := d.ov.Base().(Health); ok {
		checks = append([]healthCheck{{"state store", h}}, checks...)
	}
	for _, c := range checks {
		if err := c.h.Healthy(); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}
