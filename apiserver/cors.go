package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// The CORS answers: the methods and request headers the API uses, and the response headers a
// browser's script may read.
const (
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key"
	corsExposeHeaders = "Location, Retry-After, Idempotent-Replayed"
	corsMaxAge        = "600"
)

// corsPolicy lets the listed browser origins call the API. The API authenticates with a bearer
// token or a stream ticket, never a cookie, so it never allows credentials, and it names the
// caller's origin rather than "*".
type corsPolicy struct {
	origins map[string]bool
}

// newCORSPolicy checks the allowed origins: each scheme://host[:port], http or https, no path;
// "*" is refused.
func newCORSPolicy(origins []string) (*corsPolicy, error) {
	p := &corsPolicy{origins: map[string]bool{}}
	for _, o := range origins {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if strings.Contains(o, "*") {
			return nil, fmt.Errorf("allowed origin %q: wildcards are not allowed; list the frontend's origins", o)
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("allowed origin %q: want scheme://host[:port], e.g. https://app.example.com", o)
		}
		p.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return p, nil
}

// handle answers a preflight from an allowed origin, and lets an allowed origin's script read
// the answer of any other request. A disallowed origin gets no CORS headers (so its script
// cannot read the answer), and 403 to a preflight.
func (p *corsPolicy) handle(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		c.Next()
		return
	}
	h := c.Writer.Header()
	h.Add("Vary", "Origin")
	preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
	if !p.origins[origin] {
		if preflight {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"success": false, "error": &apiError{Code: "origin_not_allowed",
				Message: "origin " + origin + " may not call this API cross-origin (see --cors-allowed-origins)"}})
			return
		}
		c.Next()
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if preflight {
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	c.Next()
}
