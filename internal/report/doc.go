// Package report writes incident reports of anonymous access: one
// self-contained HTML page (kanon report, kanon scan --report FILE.html)
// for the people handling an incident, or Markdown for a ticket.
//
// A Collector gathers what a report shows while the driver (internal/run)
// scans: it is a run.Observer that counts every event the driver evaluates
// and an OnAlert/OnBad hook that keeps the alerts and the bad records
// (Collector.Attach wires all three into a run.Config). Anonymous requests
// are those of the built-in rules: the username is system:anonymous or
// system:unauthenticated, or there is none. For them it counts, by
// authorization decision (allow, forbid, none),
//
//   - requests per minute over the scanned period (the timeline), with
//     the alerts raised in each minute;
//   - the source IPs (the first of sourceIPs, the client), the user agents,
//     the resources (group, resource, subresource; with the verbs used and
//     the response codes), the verbs and the request URIs (without query)
//     they sent or reached, each with first and last seen;
//   - the usernames they came as;
//
// and per input: the events read, their formats and the bad records.
//
// Memory is bounded whatever the input's length: each table keeps at most
// Options.MaxKeys distinct values (later values are counted together as
// "other"), the timeline at most Options.MaxBuckets buckets (past that its
// buckets widen: 1, 2, 10, 30 minutes, 1, 2, 6, 12 hours, 1 day, 1 week),
// at most Options.MaxAlerts alerts are kept with their events (the others
// are counted), and the event document of an alert is cut at
// Options.MaxEventBytes. The report says what was cut.
//
// Observe does not allocate once a value is in its table; it runs in the
// driver's goroutine, as Attach's hooks do, so a Collector needs no lock
// while the run goes on. Collector.Report, once the run is closed, builds
// the Report that WriteHTML and WriteMarkdown render.
//
// The HTML page has no script and loads nothing: its style is inline, its
// charts are inline SVG drawn here, and a Content-Security-Policy forbids
// any script or fetch. Everything that comes from the logs is escaped
// (html/template), since an attacker chooses a user agent or a URI.
package report
