package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. Linux fixes USER_HZ at 100 on every
// architecture Go supports.
const userHZ = 100

// cpuTime returns the user + system CPU time a process has used, from /proc/<pid>/stat (pid may
// be "self").
func cpuTime(pid string) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(data)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat line. The command
// name (field 2) is in parentheses and may hold spaces, so fields are counted after the last ')'.
func parseStatCPU(data []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// serverMemory returns the peak (VmHWM) and current (VmRSS) resident set of pid in MB.
func serverMemory(pid int) (peakMB, rssMB float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return parseStatusMemory(f)
}

func parseStatusMemory(f io.Reader) (peakMB, rssMB float64, err error) {
	var havePeak, haveRSS bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		fields := strings.Fields(rest) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line in /proc status", name)
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("unexpected %s line in /proc status", name)
		}
		if name == "VmHWM" {
			peakMB, havePeak = kb/1024, true
		} else {
			rssMB, haveRSS = kb/1024, true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !havePeak || !haveRSS {
		return 0, 0, fmt.Errorf("no VmHWM/VmRSS in /proc status (is the process alive?)")
	}
	return peakMB, rssMB, nil
}
