package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
)

// userIndex indexes every job kind by spec.userId, so a user's jobs are listed by the index,
// not by a scan of the namespace; phaseIndex by status.phase, so backpressure counts the jobs
// the controller has not enqueued yet (phase "") without one.
const (
	userIndex  = "spec.userId"
	phaseIndex = "status.phase"
)

// indexJobs adds the indexes the facade reads by. Call it before the cache starts.
func indexJobs(ctx context.Context, indexer client.FieldIndexer) error {
	for _, kind := range jobsv1alpha1.JobKinds {
		err := indexer.IndexField(ctx, kind.New(), userIndex, func(o client.Object) []string {
			return []string{o.(jobsv1alpha1.JobObject).Common().UserID}
		})
		if err != nil {
			return fmt.Errorf("index %s by user: %w", kind.Kind, err)
		}
		err = indexer.IndexField(ctx, kind.New(), phaseIndex, func(o client.Object) []string {
			return []string{string(o.(jobsv1alpha1.JobObject).JobStatus().Phase)}
		})
		if err != nil {
			return fmt.Errorf("index %s by phase: %w", kind.Kind, err)
		}
	}
	return nil
}

// kindOfID is the job kind whose id prefix the id carries, and false for an id of another
// shape (a job created with kubectl under a name of its own).
func kindOfID(id string) (jobsv1alpha1.JobKind, bool) {
	for _, kind := range jobsv1alpha1.JobKinds {
		if strings.HasPrefix(id, kind.IDPrefix+"-") {
			return kind, true
		}
	}
	return jobsv1alpha1.JobKind{}, false
}

// kindOf is the kind of a queue the facade has checked, or of a job it holds.
func kindOf(queueName jobsv1alpha1.QueueName) jobsv1alpha1.JobKind {
	kind, _ := jobsv1alpha1.KindOf(queueName)
	return kind
}

var errJobNotFound = errors.New("job not found")

// cacheLag bounds how long after its create a job may be missing from the cache; clockSkew how
// far ahead of this facade's clock another replica's may run.
const (
	cacheLag  = 2 * time.Minute
	clockSkew = 30 * time.Second
)

// randomIDPattern is the shape of the ids the facade draws for jobs and schedules:
// <prefix>-<8 hex>-<13-digit Unix ms>.
var randomIDPattern = regexp.MustCompile(`^(?:` + strings.Join(idPrefixes(), "|") + `)-[0-9a-f]{8}-([0-9]{13})$`)

// randomID draws an id of randomIDPattern's shape, stamped with now.
func randomID(prefix string, now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%d", prefix, hex.EncodeToString(b[:]), now.UnixMilli())
}

func idPrefixes() []string {
	prefixes := []string{scheduleIDPrefix}
	for _, kind := range jobsv1alpha1.JobKinds {
		prefixes = append(prefixes, regexp.QuoteMeta(kind.IDPrefix))
	}
	return prefixes
}

// mayLagTheCache says whether a job or schedule missing from the cache may just be new, and so is worth a
// read from the kube-apiserver: only an id of the facade's random shape whose stamp is within
// cacheLag of now. Any other id missing from the cache is absent, so a flood of guessed ids
// (or the seed's hook polling an old one every 2 s) costs the kube-apiserver nothing. A job
// created with an Idempotency-Key is in the creating facade's cache before its 202 (awaitCached).
func (s *Server) mayLagTheCache(id string) bool {
	m := randomIDPattern.FindStringSubmatch(id)
	if m == nil {
		return false
	}
	ms, _ := strconv.ParseInt(m[1], 10, 64)
	age := s.clock.Since(time.UnixMilli(ms))
	return age > -clockSkew && age < cacheLag
}

// idMillis is the Unix milliseconds a random id of the facade ends in (<prefix>-<8 hex>-<ms>),
// or 0 for an id of another shape.
func idMillis(id string) int64 {
	stamp := id[strings.LastIndexByte(id, '-')+1:]
	ms, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil || len(stamp) != 13 {
		return 0
	}
	return ms
}

// findJob reads the caller's job id. A job of another user is exactly as absent as an unknown
// id. The cache answers first; a miss on an id this facade could have just created is read
// from the kube-apiserver, so a read right after the create never answers not found.
func (s *Server) findJob(ctx context.Context, user, id string) (jobsv1alpha1.JobObject, error) {
	if len(validation.IsDNS1123Subdomain(id)) > 0 {
		return nil, errJobNotFound
	}
	key := client.ObjectKey{Namespace: s.cfg.Namespace, Name: id}
	kinds := jobsv1alpha1.JobKinds
	prefixed, hasPrefix := kindOfID(id)
	if hasPrefix {
		// The prefix's kind first: a job a schedule or kubectl named may carry another kind's.
		kinds = append([]jobsv1alpha1.JobKind{prefixed}, slices.DeleteFunc(slices.Clone(kinds), func(k jobsv1alpha1.JobKind) bool {
			return k.Queue == prefixed.Queue
		})...)
	}
	for _, kind := range kinds {
		job := kind.New()
		err := s.cfg.Kube.Get(ctx, key, job)
		if apierrors.IsNotFound(err) && hasPrefix && kind.Queue == prefixed.Queue && s.mayLagTheCache(id) {
			err = s.cfg.Reader.Get(ctx, key, job)
		}
		switch {
		case err == nil:
			if job.Common().UserID != user {
				return nil, errJobNotFound
			}
			return job, nil
		case !apierrors.IsNotFound(err):
			return nil, kubeError(err)
		}
	}
	return nil, errJobNotFound
}
