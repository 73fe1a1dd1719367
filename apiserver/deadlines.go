package apiserver

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// uploadRoutes read a large body: a pricing file or an analytics request's rows.
var uploadRoutes = map[string]bool{
	http.MethodPost + " /api/files":               true,
	http.MethodPut + " /api/files/:id":            true,
	http.MethodPost + " /api/files/:id/analytics": true,
}

// maxHeaderBytes bounds a request's headers: a bearer token is about a kilobyte.
const maxHeaderBytes = 64 << 10

// httpServer serves h with the limits' connection deadlines: headers in 10 s, an idle
// keep-alive connection closed after IdleTimeout. The body and answer deadlines depend on the
// route, so deadlines sets them per request.
func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: s.limits.IdleTimeout,
		MaxHeaderBytes: maxHeaderBytes}
}

// deadlines gives each request its read and write deadlines: a small JSON body BodyTimeout, an
// upload UploadTimeout, and the answer WriteTimeout beyond that. An event stream gets none: it
// lasts until its job ends or its lifetime passes. Every request sets both, since a deadline
// set for one request would otherwise hold for the next on a keep-alive connection.
func (s *Server) deadlines(c *gin.Context) {
	var read, write time.Time
	if route := c.FullPath(); route != eventsRoute {
		now, body := time.Now(), s.limits.BodyTimeout
		if uploadRoutes[c.Request.Method+" "+route] {
			body = s.limits.UploadTimeout
		}
		if body > 0 {
			read = now.Add(body)
		}
		if s.limits.WriteTimeout > 0 {
			write = now.Add(body + s.limits.WriteTimeout)
		}
	}
	rc := http.NewResponseController(c.Writer)
	// ErrNotSupported only where there is no connection (a recorder in a test).
	_ = rc.SetReadDeadline(read)
	_ = rc.SetWriteDeadline(write)
	c.Next()
}
