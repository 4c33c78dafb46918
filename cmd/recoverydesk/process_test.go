package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file is the harness of the tests that run the real binary as separate processes (crash,
// scale-out, acceptance): one build with the rdtest tag per test run, and a process type that
// starts it, waits for it to listen, and stops or kills it.

var testBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the binary built by rdtestBinary after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if testBinary.dir != "" {
		os.RemoveAll(testBinary.dir)
	}
	os.Exit(code)
}

// rdtestBinary builds the program with -tags rdtest (the test clock at /test/clock) once per test
// run and returns its path (race-built under -race). Tests that need it skip under -short unless
// CI=true.
func rdtestBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds and runs the real binary (runs without -short, and always under CI=true)")
	}
	testBinary.once.Do(func() {
		// The test binary lacks the rdtest-only files; reading them makes go test's result
		// cache notice when they change (it tracks the files a test opens).
		tagged, _ := filepath.Glob("*_rdtest.go")
		for _, f := range tagged {
			if _, err := os.ReadFile(f); err != nil {
				testBinary.err = err
				return
			}
		}
		testBinary.dir, testBinary.err = os.MkdirTemp("", "recoverydesk-bin-")
		if testBinary.err != nil {
			return
		}
		testBinary.path, testBinary.err = goBuild(testBinary.dir, "rdtest")
	})
	if testBinary.err != nil {
		t.Fatal(testBinary.err)
	}
	return testBinary.path
}

// goBuild builds the program into dir with the build tags given ("" for a production build) and
// returns the binary's path. Under -race the binary is race-built too, reusing the packages the
// test build already compiled.
func goBuild(dir, tags string) (string, error) {
	path := filepath.Join(dir, "recoverydesk")
	args := []string{"build", "-o", path}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return path, nil
}

// procEnv is the environment of a process the tests start: the test process's own, without any
// RECOVERYDESK_* setting (a developer's shell must not change what a test runs against), plus env.
func procEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RECOVERYDESK_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// proc is one running recoverydesk process.
type proc struct {
	cmd    *exec.Cmd
	Base   string      // http://host:port once listening
	Stdout *syncBuffer // everything it printed, kept after it ended
	Stderr *syncBuffer // its JSON log
	done   chan error  // receives Wait's result once
	exited error
	ended  bool
}

// startProc runs bin with args in dir with env (RECOVERYDESK_* of the test process are not
// inherited) and, when waitListening, waits until it prints its listening line. The process is
// killed at cleanup if still running.
func startProc(t testing.TB, bin, dir string, env map[string]string, waitListening bool, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = procEnv(env)
	p := &proc{cmd: cmd, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		r := bufio.NewReader(pipe)
		for {
			line, err := r.ReadString('\n')
			p.Stdout.Write([]byte(line))
			if err != nil {
				if err != io.EOF {
					p.Stdout.Write([]byte("\n[stdout read: " + err.Error() + "]\n"))
				}
				return
			}
		}
	}()
	go func() {
		<-copied // Wait closes the pipe: read everything first
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { p.Kill() })
	if waitListening {
		p.Base = p.WaitOutput(t, listeningRE.String(), 60*time.Second)[1]
	}
	return p
}

// WaitOutput waits until stdout matches the regular expression re and returns the submatches.
// It fails the test if the process ends first or the time runs out.
func (p *proc) WaitOutput(t testing.TB, re string, timeout time.Duration) []string {
	t.Helper()
	rx := mustCompile(t, re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.Stdout.String()); m != nil {
			return m
		}
		if p.Exited() {
			if m := rx.FindStringSubmatch(p.Stdout.String()); m != nil {
				return m
			}
			t.Fatalf("process ended (%v) before %q appeared\nstdout:\n%s\nstderr:\n%s", p.exited, re, p.Stdout, tail(p.Stderr.String(), 4000))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%q did not appear within %s\nstdout:\n%s\nstderr:\n%s", re, timeout, p.Stdout, tail(p.Stderr.String(), 4000))
	return nil
}

// Exited reports whether the process has ended, without waiting.
func (p *proc) Exited() bool {
	if p.ended {
		return true
	}
	select {
	case err := <-p.done:
		p.exited, p.ended = err, true
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to end and returns its exit error.
func (p *proc) Wait(timeout time.Duration) (error, bool) {
	if p.ended {
		return p.exited, true
	}
	select {
	case err := <-p.done:
		p.exited, p.ended = err, true
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Kill ends the process with SIGKILL (no chance to clean up) and waits for it.
func (p *proc) Kill() {
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.Wait(30 * time.Second)
}

// Stop ends the process with SIGTERM and fails the test unless it exits cleanly within 20 s.
func (p *proc) Stop(t testing.TB) {
	t.Helper()
	if p.Exited() {
		t.Fatalf("process had already ended: %v\nstderr:\n%s", p.exited, tail(p.Stderr.String(), 4000))
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	err, ok := p.Wait(20 * time.Second)
	if !ok {
		p.Kill()
		t.Fatalf("no exit within 20 s of SIGTERM\nstderr:\n%s", tail(p.Stderr.String(), 4000))
	}
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, tail(p.Stderr.String(), 4000))
	}
}

// advanceClock moves the test clock of the process at base forward (rdtest builds only).
func advanceClock(t testing.TB, base string, d time.Duration) {
	t.Helper()
	body := strings.NewReader(fmt.Sprintf(`{"advance_seconds": %g}`, d.Seconds()))
	resp, err := http.Post(base+"/test/clock", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /test/clock: %d %s", resp.StatusCode, b)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func mustCompile(t testing.TB, re string) *regexp.Regexp {
	t.Helper()
	rx, err := regexp.Compile(re)
	if err != nil {
		t.Fatal(err)
	}
	return rx
}

// TestTestClock: the rdtest build's clock moves forward on request, never backward, and the
// production build (TestProcessSIGTERM) has no such route.
func TestTestClock(t *testing.T) {
	bin := rdtestBinary(t)
	dir := t.TempDir()
	p := startProc(t, bin, dir, map[string]string{"RECOVERYDESK_ADDR": "127.0.0.1:0"}, true, "serve")
	type clockState struct {
		Now time.Time `json:"now"`
	}
	read := func() clockState {
		resp, err := http.Get(p.Base + "/test/clock")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st clockState
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	before := read()
	advanceClock(t, p.Base, 72*time.Hour)
	after := read()
	if got := after.Now.Sub(before.Now); got < 72*time.Hour || got > 72*time.Hour+time.Minute {
		t.Errorf("clock moved %s, want 72h", got)
	}
	resp, err := http.Post(p.Base+"/test/clock", "application/json", strings.NewReader(`{"advance_seconds": -60}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("moving the clock back: %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(p.Stderr.String(), "never run this build in production") {
		t.Errorf("the log does not warn about the test clock:\n%s", p.Stderr)
	}
	p.Stop(t)
}
