package main

import (
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
)

var (
	logFile string   // --log FILE
	logOut  *os.File // FILE, once opened
)

// logTo sends the log to standard error (in the foreground, or in the daemon until the mount is up) or to
// syslog (the daemon once up, when the caller's terminal is gone), and also to --log FILE when given.
func logTo(file string, background bool) error {
	logFile = file
	var ws []io.Writer
	if background {
		if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_WARNING, "vmdkmount"); err == nil {
			ws = append(ws, w)
		}
	} else {
		ws = append(ws, os.Stderr)
	}
	if file != "" {
		if logOut == nil {
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return fmt.Errorf("--log: %w", err)
			}
			logOut = f
		}
		ws = append(ws, logOut)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(io.MultiWriter(ws...), &slog.HandlerOptions{Level: logLevel})))
	return nil
}
