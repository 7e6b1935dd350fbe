package httplimit

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemQuotaExceeded is the problem type of the default 429 response,
// registered by draft-ietf-httpapi-ratelimit-headers-10, section 5.1.
const ProblemQuotaExceeded = "https://iana.org/assignments/http-problem-types#quota-exceeded"

// problem is an RFC 9457 problem document.
type problem struct {
	Type     string   `json:"type"`
	Title    string   `json:"title"`
	Status   int      `json:"status"`
	Detail   string   `json:"detail,omitempty"`
	Violated []string `json:"violated-policies,omitempty"`
}

// encode returns p as JSON. Marshalling strings and ints cannot fail; if
// it ever did, the document would be the bare status.
func encode(p problem) []byte {
	b, err := json.Marshal(p)
	if err != nil {
		return []byte(`{"type":"about:blank","status":` + strconv.Itoa(p.Status) + "}\n")
	}
	return append(b, '\n')
}

// The documents of the responses that do not depend on the request. They
// say what happened and never why: no error text reaches the client.
var (
	problemBadKey = encode(problem{
		Type: "about:blank", Title: "Bad Request", Status: http.StatusBadRequest,
		Detail: "The request does not carry what this service needs to apply its rate limit.",
	})
	problemUnavailable = encode(problem{
		Type: "about:blank", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
		Detail: "The rate limit cannot be checked right now; try again later.",
	})
	problemInternal = encode(problem{
		Type: "about:blank", Title: "Internal Server Error", Status: http.StatusInternalServerError,
	})
)

func writeProblem(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeQuotaExceeded is the default denied handler: 429 with a
// quota-exceeded problem document naming the binding policy.
func (g *Guard) writeQuotaExceeded(w http.ResponseWriter, r *http.Request) {
	p := problem{
		Type:   ProblemQuotaExceeded,
		Title:  "Quota exceeded",
		Status: http.StatusTooManyRequests,
		Detail: "Too many requests.",
	}
	if res, ok := ResultFrom(r.Context()); ok {
		retry := max(ceilSeconds(res.RetryAfter), 1)
		name := g.limitInfo(res.Limit).name
		p.Detail = "The " + strconv.Quote(name) + " quota is used up; retry in " +
			strconv.FormatInt(retry, 10) + plural(retry, " second.", " seconds.")
		p.Violated = []string{name}
	}
	writeProblem(w, http.StatusTooManyRequests, encode(p))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
