package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine is where a run happened.
type machine struct {
	CPUs     int    `json:"nproc"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
	MemTotal string `json:"mem_total"`
	Go       string `json:"go"`
	Wrk      string `json:"wrk,omitempty"`
	Nginx    string `json:"nginx,omitempty"`
	Redis    string `json:"redis,omitempty"`
}

func firstLine(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(v), ":"))
		}
	}
	return ""
}

// version runs a tool's version flag and keeps the first line it prints.
func version(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func describeMachine(ctx context.Context, wrk, redisURL string) machine {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m := machine{
		CPUs:     runtime.NumCPU(),
		CPUModel: firstLine("/proc/cpuinfo", "model name"),
		Kernel:   strings.TrimSpace(string(kernel)),
		OS:       strings.Trim(firstLine("/etc/os-release", "PRETTY_NAME="), `"`),
		MemTotal: firstLine("/proc/meminfo", "MemTotal"),
		Go:       runtime.Version(),
	}
	if wrk != "" {
		m.Wrk = version(ctx, wrk, "-v")
	}
	if _, err := exec.LookPath("nginx"); err == nil {
		m.Nginx = version(ctx, "nginx", "-v")
	}
	if redisURL != "" {
		if info, err := redisInfo(ctx, redisURL); err == nil {
			m.Redis = info["redis_version"]
		}
	}
	return m
}

func printMachine(w io.Writer, m machine) {
	fmt.Fprintf(w, "machine: %d CPUs (nproc), %s, %s\n", m.CPUs, m.CPUModel, m.MemTotal)
	fmt.Fprintf(w, "         %s, kernel %s, %s\n", m.OS, m.Kernel, m.Go)
	var tools []string
	for _, t := range []string{m.Wrk, m.Nginx} {
		if t != "" {
			tools = append(tools, t)
		}
	}
	if m.Redis != "" {
		tools = append(tools, "redis "+m.Redis)
	}
	if len(tools) > 0 {
		fmt.Fprintf(w, "         %s\n", strings.Join(tools, "; "))
	}
}

// runMachine prints the machine (for the top of make bench's output).
func runMachine(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("machine", flag.ContinueOnError)
	wrk := fs.String("wrk", "", "wrk binary, for its version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	printMachine(stdout, describeMachine(ctx, *wrk, ""))
	return nil
}

// loadavg is the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
