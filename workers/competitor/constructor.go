package competitor

import (
	"fmt"
	"strconv"

	"github.com/jengu/queue-operator/workers"
)

// The environment variables New reads; an empty one keeps the default.
const (
	EnvAPIKey   = "SERPAPI_API_KEY"
	EnvURL      = "SERPAPI_URL"
	EnvCurrency = "SERPAPI_CURRENCY"
	EnvCountry  = "SERPAPI_GL"
	EnvLanguage = "SERPAPI_HL"
	EnvMaxPages = "COMPETITOR_MAX_PAGES"
)

var _ workers.NewProcessorFunc = New

// New is the competitor queue's processor as the worker builds it: SerpApi's Google Hotels API
// over deps' store and credential Secrets, configured by the environment variables above.
func New(deps workers.ProcessorDeps) (workers.Processor, error) {
	maxPages := 0
	if v := deps.Env(EnvMaxPages); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: want a positive integer", EnvMaxPages, v)
		}
		maxPages = n
	}
	provider := NewSerpAPI(WithBaseURL(deps.Env(EnvURL)), WithMaxPages(maxPages),
		WithCountry(deps.Env(EnvCountry)), WithLanguage(deps.Env(EnvLanguage)))
	return NewProcessor(deps.Store, provider, WithAPIKey(deps.Env(EnvAPIKey)),
		WithCurrency(deps.Env(EnvCurrency)), WithSecrets(deps.Secrets)), nil
}
