package main

import "errors"

// stateOf returns the state directory the flags ask for ("" for none),
// and whether the scan keeps state (a directory, or --store).
func (p *scanParams) stateOf() (string, bool, error) {
	dir := p.stateDir
	if p.resume && dir == "" {
		dir = defaultStateDir()
	}
	stateful := dir != "" || p.store != ""
	if p.noState && stateful {
		return "", false, errors.New("--no-state and --state-dir (or --resume, --store) contradict each other")
	}
	return dir, stateful, nil
}
