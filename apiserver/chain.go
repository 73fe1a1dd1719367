package apiserver

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	jobsv1alpha1 "github.com/jengu/queue-operator/api/v1alpha1"
	"github.com/jengu/queue-operator/store"
)

// jobRequest is the body of an enqueue route, of a schedule's job and of a follow-up: the
// common fields (then included) and the kind's own.
type jobRequest interface {
	common() *commonRequest
}

// thenRequest is one follow-up of a request's then: exactly one kind's request, as the kind's
// enqueue route takes it, and the follow-up's own then beside it, as spec.then has them.
type thenRequest struct {
	Enrichment *enrichRequest     `json:"enrichment"`
	Competitor *competitorRequest `json:"competitor"`
	Analytics  *analyticsRequest  `json:"analytics"`
	Then       []thenRequest      `json:"then"`
}

// buildJob makes the job a request asks for on the caller's property: its common spec, its then
// and the kind's fields (build). The enqueue routes, the schedules' templates and the follow-ups
// all build their jobs here.
func buildJob(req jobRequest, build jobBuilder, property store.Property, user string) (jobsv1alpha1.JobObject, error) {
	cr := req.common()
	common, err := cr.spec(property.ID, user)
	if err != nil {
		return nil, err
	}
	if common.Then, err = followUps(cr.Then, property, user); err != nil {
		return nil, err
	}
	return build(common, property)
}

// followUps builds a request's then. A follow-up's own then becomes its spec's; one level more
// is passed on for the kube-apiserver to refuse by name (a chain is at most 3 jobs deep).
func followUps(items []thenRequest, property store.Property, user string) ([]jobsv1alpha1.FollowUp, error) {
	var out []jobsv1alpha1.FollowUp
	for i, item := range items {
		path := fmt.Sprintf("then[%d]", i)
		job, err := followUpJob(item, property, user, path)
		if err != nil {
			return nil, err
		}
		followUp := jobsv1alpha1.FollowUp{FollowUpJob: job}
		for j, second := range item.Then {
			path := fmt.Sprintf("%s.then[%d]", path, j)
			job, err := followUpJob(second, property, user, path)
			if err != nil {
				return nil, err
			}
			last := jobsv1alpha1.LastFollowUp{FollowUpJob: job}
			for k, third := range second.Then {
				job, err := followUpJob(third, property, user, fmt.Sprintf("%s.then[%d]", path, k))
				if err != nil {
					return nil, err
				}
				last.Then = append(last.Then, job)
			}
			followUp.Then = append(followUp.Then, last)
		}
		out = append(out, followUp)
	}
	return out, nil
}

// followUpJob builds one follow-up's own fields through its kind's request, as its enqueue
// route would; its errors name the follow-up's fields (then[0].analytics.params.model).
func followUpJob(item thenRequest, property store.Property, user, path string) (jobsv1alpha1.FollowUpJob, error) {
	req, build, name, err := item.kind(path)
	if err != nil {
		return jobsv1alpha1.FollowUpJob{}, err
	}
	prefix := path + "." + name + "."
	if len(req.common().Then) > 0 {
		return jobsv1alpha1.FollowUpJob{}, fieldError(prefix+"then", "a follow-up's then goes beside its kind, as "+path+".then")
	}
	job, err := buildJob(req, build, property, user)
	if err != nil {
		return jobsv1alpha1.FollowUpJob{}, prefixed(err, prefix)
	}
	return jobsv1alpha1.FollowUpOf(job), nil
}

// kind picks the one kind a follow-up or a schedule's template names.
func (item thenRequest) kind(path string) (jobRequest, jobBuilder, string, error) {
	var picked []string
	var req jobRequest
	var build jobBuilder
	if item.Enrichment != nil {
		picked, req, build = append(picked, "enrichment"), item.Enrichment, item.Enrichment.build
	}
	if item.Competitor != nil {
		picked, req, build = append(picked, "competitor"), item.Competitor, item.Competitor.build
	}
	if item.Analytics != nil {
		if len(item.Analytics.Data) > 0 {
			return nil, nil, "", fieldError(path+".analytics.data", "not accepted here: a follow-up or a scheduled analysis reads the property's stored rows")
		}
		picked, req, build = append(picked, "analytics"), item.Analytics, item.Analytics.build
	}
	if len(picked) != 1 {
		return nil, nil, "", fieldError(path, "must be exactly one of enrichment, competitor and analytics")
	}
	return req, build, picked[0], nil
}

// prefixed renames the fields of a refused request's part to their place in the whole request.
func prefixed(err error, prefix string) error {
	var e *apiError
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = map[string]string{}
	var messages []string
	for _, field := range slices.Sorted(maps.Keys(e.Fields)) {
		out.Fields[prefix+field] = e.Fields[field]
		messages = append(messages, prefix+field+": "+e.Fields[field])
	}
	out.Message = strings.Join(messages, "; ")
	return &out
}
