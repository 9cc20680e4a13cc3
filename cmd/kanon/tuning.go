package main

import (
	"github.com/spf13/pflag"

	"github.com/kanon-dev/kanon/internal/run"
)

// tuningFlags are hidden switches of kanon scan for checking that an
// optimisation changes nothing (bench/scan-vs-jq.sh compares the alerts
// with each of them on and off): they change the speed, never the alerts.
type tuningFlags struct {
	noPrefilter bool
	decoders    int
}

func (t *tuningFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&t.noPrefilter, "no-prefilter", false, "evaluate every event, without the prefilter derived from the rules")
	fs.IntVar(&t.decoders, "decoders", -1, "decoding goroutines (-1: one per core when there are several)")
	for _, name := range []string{"no-prefilter", "decoders"} {
		if err := fs.MarkHidden(name); err != nil {
			panic("BUG: " + err.Error())
		}
	}
}

// apply sets the tuning of cfg.
func (t *tuningFlags) apply(cfg *run.Config) {
	cfg.NoPrefilter = t.noPrefilter
	cfg.Decoders = run.DefaultDecoders()
	if t.decoders >= 0 {
		cfg.Decoders = t.decoders
	}
}
