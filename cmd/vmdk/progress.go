package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"github.com/vmdkmount/vmdkmount/vddk"
	"golang.org/x/term"
)

// progressFlag is qemu-img's -p.
var progressFlag = &cli.BoolFlag{Name: "progress", Aliases: []string{"p"}, Usage: "show progress on standard error"}

// progress returns what a long operation reports its progress to when -p was given (nil otherwise) and
// the function that finishes the display (ok: the operation succeeded, so it is complete). On a terminal
// it is a bar; elsewhere (a log, a pipe) it is a line per whole percent reached, "    (12.00/100%)",
// from 0 to 100 as qemu-img prints them.
func progress(c *cli.Context, what string) (vddk.Progress, func(ok bool)) {
	if !c.Bool("progress") {
		return nil, func(bool) {}
	}
	w := c.App.ErrWriter
	if w == nil {
		w = os.Stderr
	}
	var mu sync.Mutex // the operations may report from several goroutines
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
				mu.Lock()
				defer mu.Unlock()
				if bar == nil {
					bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
						progressbar.OptionSetWidth(40), progressbar.OptionThrottle(100*time.Millisecond), // no rate: holes make it meaningless
						progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
				}
				bar.Set64(done)
			}, func(bool) {
				mu.Lock()
				defer mu.Unlock()
				if bar != nil && !bar.IsFinished() {
					bar.Exit()
					fmt.Fprintln(w)
				}
			}
	}
	last := -1
	line := func(pct int) { fmt.Fprintf(w, "    (%d.00/100%%)\n", pct) }
	return func(done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			pct := int(done * 100 / max(total, 1))
			if last < 0 && pct > 0 {
				line(0)
			}
			if pct > last {
				last = pct
				line(pct)
			}
		}, func(ok bool) {
			mu.Lock()
			defer mu.Unlock()
			if last < 0 {
				line(0)
			}
			if ok && last < 100 {
				line(100) // done, though nothing was left to copy at the end
			}
		}
}

// withProgress runs op with the progress display of -p.
func withProgress(c *cli.Context, what string, op func(vddk.Progress) error) error {
	p, finish := progress(c, what)
	err := op(p)
	finish(err == nil)
	return err
}
