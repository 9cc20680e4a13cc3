// Package examples embeds the example audit logs that `kanon scan` reads
// when it is given no path: a short day in the life of a cluster whose
// API server lets anonymous requests in, with normal controller, kubelet
// and kubectl traffic around them.
package examples

import "embed"

// FS holds logs/*.
//
//go:embed logs
var FS embed.FS
