package apiserver

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// ticketRoute issues the tickets that open eventsRoute without an Authorization header, which a
// browser's EventSource cannot send.
const ticketRoute = "/api/jobs/:jobId/events/ticket"

// ticketParam carries a stream ticket on eventsRoute.
const ticketParam = "ticket"

// streamTicket answers POST /api/jobs/:jobId/events/ticket: a ticket that opens the caller's
// job's event stream as ?ticket=, for this job only, until expiresAt (Unix ms).
func (s *Server) streamTicket(c *gin.Context) {
	id, user := c.Param("jobId"), userOf(c)
	_, err := s.findJob(c, user, id)
	if errors.Is(err, errJobNotFound) {
		_, err = s.historyOf(c, user, id)
	}
	if errors.Is(err, errJobNotFound) {
		s.jobNotFound(c, id)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	ticket, expires, err := s.tickets.Issue(s.cfg.Namespace, user, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"success": true, "ticket": ticket, "expiresAt": expires.UnixMilli()})
}

// ticketUser authenticates an event stream opened with ?ticket= instead of a bearer token;
// other routes ignore the parameter (they need the token). A ticket is taken out of the
// request's URL on every route once read, so nothing that logs the request later (access logs,
// panics) can write it down.
func (s *Server) ticketUser(c *gin.Context) (user string, ok bool, err error) {
	query := c.Request.URL.Query()
	if !query.Has(ticketParam) {
		return "", false, nil
	}
	ticket := query.Get(ticketParam)
	query.Del(ticketParam)
	c.Request.URL.RawQuery = query.Encode()
	c.Request.RequestURI = c.Request.URL.RequestURI()
	if c.FullPath() != eventsRoute {
		return "", false, nil
	}
	user, err = s.tickets.Check(ticket, s.cfg.Namespace, c.Param("jobId"))
	return user, true, err
}
