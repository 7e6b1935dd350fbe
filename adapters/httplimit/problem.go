package httplimit

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/floodgate-go/floodgate/limiter"
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

// quotaExceeded is the default denied handler: 429 with a quota-exceeded
// problem document naming the binding policy, written for res from the limit's cached
// body parts: no JSON encoding per denied request.
func (g *Guard) quotaExceeded(w http.ResponseWriter, res limiter.Result) {
	in := g.limitInfo(res.Limit)
	retry := retrySeconds(res)
	body := make([]byte, 0, len(in.deniedHead)+len(in.deniedMany)+len(in.deniedTail)+20)
	body = append(body, in.deniedHead...)
	body = strconv.AppendInt(body, retry, 10)
	body = append(body, plural(retry, in.deniedOne, in.deniedMany)...)
	body = append(body, in.deniedTail...)
	writeProblem(w, http.StatusTooManyRequests, body)
}

// quotaExceededParts encodes the 429 document of the policy name once,
// split around the seconds to wait, so that a denied request only appends
// a number. The marker never survives: it is cut out.
func quotaExceededParts(name string) (head, one, many, tail string) {
	const marker = `\u0000SECONDS\u0000` // how encoding/json writes the NULs below
	doc := func(unit string) string {
		return string(encode(problem{
			Type:     ProblemQuotaExceeded,
			Title:    "Quota exceeded",
			Status:   http.StatusTooManyRequests,
			Detail:   "The " + strconv.Quote(name) + " quota is used up; retry in \x00SECONDS\x00" + unit,
			Violated: []string{name},
		}))
	}
	d1, dn := doc(" second."), doc(" seconds.")
	i := strings.Index(d1, marker)
	j := strings.Index(dn, marker)
	head = d1[:i]
	rest1, restN := d1[i+len(marker):], dn[j+len(marker):]
	// rest = unit + tail; the tails are equal.
	k := strings.Index(rest1, `",`)
	tail = rest1[k:]
	return head, rest1[:k], restN[:len(restN)-len(tail)], tail
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
