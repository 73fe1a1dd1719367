package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/internal/testenv"
)

// crLife is what the suite saw of one job CR through its own watch (straight to the
// kube-apiserver, never through the cut proxy).
type crLife struct {
	phase      jobsv1alpha1.JobPhase
	message    string
	finishedAt time.Time
	// phases are the phase changes seen, with the wall time they were seen at.
	phases []phaseSeen
	// lastNonTerminal is when a non-terminal phase was last seen; terminalSince when the
	// current terminal phase was first seen.
	lastNonTerminal, terminalSince time.Time
	// firstTerminal is when a terminal phase was first seen.
	firstTerminal time.Time
	deletedAt     time.Time
	// ttlFinishedAt is the finishedAt the CR had when last seen terminal, and ttlPhase its phase.
	ttlFinishedAt time.Time
	ttlPhase      jobsv1alpha1.JobPhase
}

type phaseSeen struct {
	phase jobsv1alpha1.JobPhase
	at    time.Time
}

// tracker follows every EnrichmentJob of the namespace.
type tracker struct {
	mu   sync.Mutex
	jobs map[string]*crLife
}

func startTracker(ctx context.Context, env *testenv.Env, namespace string) (*tracker, error) {
	c, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{namespace: {}}})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &jobsv1alpha1.EnrichmentJob{})
	if err != nil {
		return nil, err
	}
	tr := &tracker{jobs: map[string]*crLife{}}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { tr.observe(obj, false) },
		UpdateFunc: func(_, obj any) { tr.observe(obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			tr.observe(obj, true)
		},
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the tracker's cache did not sync")
	}
	return tr, nil
}

func (tr *tracker) observe(obj any, deleted bool) {
	job, ok := obj.(*jobsv1alpha1.EnrichmentJob)
	if !ok {
		return
	}
	now := time.Now()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	l := tr.jobs[job.Name]
	if l == nil {
		l = &crLife{}
		tr.jobs[job.Name] = l
	}
	phase := job.Status.Phase
	if len(l.phases) == 0 || l.phases[len(l.phases)-1].phase != phase {
		l.phases = append(l.phases, phaseSeen{phase: phase, at: now})
	}
	if phase.IsFinished() {
		if !l.phase.IsFinished() || l.phase != phase {
			l.terminalSince = now
		}
		if l.firstTerminal.IsZero() {
			l.firstTerminal = now
		}
		if job.Status.FinishedAt != nil {
			l.ttlFinishedAt, l.ttlPhase = job.Status.FinishedAt.Time, phase
		}
	} else {
		l.lastNonTerminal = now
	}
	l.phase, l.message = phase, job.Status.Message
	if job.Status.FinishedAt != nil {
		l.finishedAt = job.Status.FinishedAt.Time
	}
	if deleted {
		l.deletedAt = now
	}
}

// get returns a copy of what was seen of a job.
func (tr *tracker) get(id string) (crLife, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	l, ok := tr.jobs[id]
	if !ok {
		return crLife{}, false
	}
	c := *l
	c.phases = append([]phaseSeen(nil), l.phases...)
	return c, true
}

func (l crLife) describe(rel func(time.Time) string) string {
	var parts []string
	for _, p := range l.phases {
		name := string(p.phase)
		if name == "" {
			name = "new"
		}
		parts = append(parts, name+rel(p.at))
	}
	if !l.deletedAt.IsZero() {
		parts = append(parts, "deleted"+rel(l.deletedAt))
	}
	return strings.Join(parts, " ")
}
