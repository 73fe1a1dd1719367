package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// leaseReplyDropper is a TCP proxy between one worker and Redis that reads the RESP traffic
// both ways. Armed, it lets the next lease (the lease script: EVAL/EVALSHA with the queue's
// wait, delayed, active, ... keys) that leased at least one job execute in Redis, swallows its
// reply and closes that worker connection, once. The worker never learns that it holds those
// jobs: exactly a reply lost on the network.
type leaseReplyDropper struct {
	target   string
	listener net.Listener

	mu      sync.Mutex
	armed   bool
	dropped *droppedLease
	conns   map[net.Conn]struct{}
}

// droppedLease is the lease reply the proxy swallowed.
type droppedLease struct {
	At   time.Time
	Jobs []string
}

func startLeaseReplyDropper(t *testing.T, target string) *leaseReplyDropper {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lease proxy: %v", err)
	}
	p := &leaseReplyDropper{target: target, listener: l, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for c := range p.conns {
			_ = c.Close()
		}
	})
	return p
}

func (p *leaseReplyDropper) Addr() string { return p.listener.Addr().String() }

// Arm makes the proxy drop the next lease reply that carries a job.
func (p *leaseReplyDropper) Arm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.dropped = true, nil
}

// Dropped is the reply dropped since Arm, or nil.
func (p *leaseReplyDropper) Dropped() *droppedLease {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

func (p *leaseReplyDropper) serve() {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		// Each request's kind, in order, for the reply reader: RESP replies come in request order.
		requests := make(chan bool, 1024)
		go p.forwardRequests(client, server, requests)
		go p.forwardReplies(client, server, requests)
	}
}

func (p *leaseReplyDropper) closePair(client, server net.Conn) {
	_ = client.Close()
	_ = server.Close()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

func (p *leaseReplyDropper) forwardRequests(client, server net.Conn, requests chan<- bool) {
	defer close(requests)
	defer p.closePair(client, server)
	r := bufio.NewReader(client)
	for {
		var raw bytes.Buffer
		v, err := readRESP(r, &raw)
		if err != nil {
			return
		}
		requests <- isLease(v)
		if _, err := server.Write(raw.Bytes()); err != nil {
			return
		}
	}
}

func (p *leaseReplyDropper) forwardReplies(client, server net.Conn, requests <-chan bool) {
	defer p.closePair(client, server)
	r := bufio.NewReader(server)
	for {
		var raw bytes.Buffer
		v, err := readRESP(r, &raw)
		if err != nil {
			return
		}
		if raw.Len() > 0 && raw.Bytes()[0] == '>' { // a RESP3 push answers no request
			if _, err := client.Write(raw.Bytes()); err != nil {
				return
			}
			continue
		}
		lease, ok := <-requests
		if !ok {
			return
		}
		if lease {
			if jobs := leasedJobs(v); len(jobs) > 0 && p.takeArmed(jobs) {
				return // the reply never reaches the worker; the connection goes down
			}
		}
		if _, err := client.Write(raw.Bytes()); err != nil {
			return
		}
	}
}

func (p *leaseReplyDropper) takeArmed(jobs []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.armed {
		return false
	}
	p.armed, p.dropped = false, &droppedLease{At: time.Now(), Jobs: jobs}
	return true
}

// isLease recognises the lease script by its keys (queue/lua/lease.lua): the only script that
// touches the waiting set, the active set and the rate limiter together.
func isLease(v any) bool {
	args, ok := v.([]any)
	if !ok || len(args) < 3 {
		return false
	}
	cmd, _ := args[0].(string)
	if c := strings.ToUpper(cmd); c != "EVALSHA" && c != "EVAL" {
		return false
	}
	numKeys, err := strconv.Atoi(fmt.Sprint(args[2]))
	if err != nil || len(args) < 3+numKeys {
		return false
	}
	var wait, active, limiter bool
	for _, k := range args[3 : 3+numKeys] {
		key, _ := k.(string)
		wait = wait || strings.HasSuffix(key, ":wait")
		active = active || strings.HasSuffix(key, ":active")
		limiter = limiter || strings.HasSuffix(key, ":limiter")
	}
	return wait && active && limiter
}

// leasedJobs reads the job ids of a lease reply: {retryAt, [now,] {field, value, ...}, ...}.
func leasedJobs(v any) []string {
	reply, ok := v.([]any)
	if !ok || len(reply) < 2 {
		return nil
	}
	var ids []string
	for _, job := range reply[1:] {
		fields, _ := job.([]any)
		for i := 0; i+1 < len(fields); i += 2 {
			if name, _ := fields[i].(string); name == "id" {
				id, _ := fields[i+1].(string)
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// readRESP reads one RESP2 or RESP3 value, appending its bytes to raw. Strings come back as
// string, aggregates as []any (a map's keys and values alternate), nulls as nil.
func readRESP(r *bufio.Reader, raw *bytes.Buffer) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	raw.WriteString(line)
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("resp: bad line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return body, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("resp: bad length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		raw.Write(buf)
		return string(buf[:n]), nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("resp: bad length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		out := make([]any, 0, n)
		for range n {
			v, err := readRESP(r, raw)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if line[0] == '|' { // attributes precede the value they describe
			return readRESP(r, raw)
		}
		return out, nil
	}
	return nil, fmt.Errorf("resp: unknown type %q", line[0])
}
