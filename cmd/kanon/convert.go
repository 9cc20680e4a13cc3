package main

import (
	"bufio"
	"context"
	"fmt"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/spf13/cobra"
)

type convertParams struct {
	output    string
	format    string
	strict    bool
	maxRecord int
}

func newConvertCmd(io *streams) *cobra.Command {
	p := &convertParams{output: "ecs", format: "auto", maxRecord: ingest.DefaultMaxRecordBytes}
	cmd := &cobra.Command{
		Use:   "convert PATH...",
		Short: "Write the canonical ECS documents of audit logs as NDJSON",
		Long: `Read audit logs in any format kanon reads and write, one per line, the ECS
document that Elastic's Kubernetes integration (data stream
kubernetes.audit_logs) makes of each event: what every rule is evaluated
against. Use it to feed any format to Elastic, or to see what a rule sees.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if p.output != "ecs" {
				return &exitError{code: 1, err: fmt.Errorf("unknown output %q (ecs)", p.output)}
			}
			w := bufio.NewWriterSize(io.out, 256<<10)
			var bad int64
			rd, err := ingest.NewReader(registry(), ingest.Options{
				Format: p.format, Fields: event.AllFields(), MaxRecordBytes: p.maxRecord, Strict: p.strict,
				OnBad: func(b ingest.BadRecord) {
					bad++
					fmt.Fprintf(io.err, "kanon: bad record: %v\n", b)
				},
			})
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			var buf []byte
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			err = rd.ReadPaths(ctx, args, io.in, func(e *event.Event) error {
				buf = e.AppendECS(buf[:0])
				buf = append(buf, '\n')
				_, err := w.Write(buf)
				return err
			})
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			st := rd.Stats()
			fmt.Fprintf(io.err, "converted %s events, %s bad records\n", humanCount(st.Events), humanCount(st.Bad))
			return nil
		},
	}
	cmd.Flags().StringVarP(&p.output, "output", "o", p.output, "output: ecs")
	cmd.Flags().StringVar(&p.format, "format", p.format, "input format: auto, "+joinNames())
	cmd.Flags().BoolVar(&p.strict, "strict", false, "stop at the first bad record (exit 1)")
	cmd.Flags().IntVar(&p.maxRecord, "max-record-bytes", p.maxRecord, "size limit of one record")
	return cmd
}
