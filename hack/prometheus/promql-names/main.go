// promql-names reads PromQL expressions, one JSON string per line on stdin, and writes one JSON
// object per line: the series selectors each expression holds (the metric name and the job it asks
// for), or why it does not parse. Test tooling: the Prometheus tests check that every name the alerts
// and the dashboard use is one the program behind that job really exports. Prometheus's own parser,
// so nothing is guessed from the text.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type selector struct {
	Metric string `json:"metric"`
	// The value of an equality matcher on job, or "" when the selector does not name one.
	Job string `json:"job"`
}

type result struct {
	Expr      string     `json:"expr"`
	Selectors []selector `json:"selectors"`
	Error     string     `json:"error,omitempty"`
}

func names(expr string) result {
	parsed, err := parser.ParseExpr(expr)
	if err != nil {
		return result{Expr: expr, Selectors: []selector{}, Error: err.Error()}
	}
	seen := map[selector]bool{}
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		vector, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		var found selector
		for _, matcher := range vector.LabelMatchers {
			if matcher.Type != labels.MatchEqual {
				continue
			}
			switch matcher.Name {
			case labels.MetricName:
				found.Metric = matcher.Value
			case "job":
				found.Job = matcher.Value
			}
		}
		seen[found] = true
		return nil
	})
	selectors := make([]selector, 0, len(seen))
	for s := range seen {
		selectors = append(selectors, s)
	}
	sort.Slice(selectors, func(i, j int) bool {
		if selectors[i].Metric != selectors[j].Metric {
			return selectors[i].Metric < selectors[j].Metric
		}
		return selectors[i].Job < selectors[j].Job
	})
	return result{Expr: expr, Selectors: selectors}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var expr string
		if err := json.Unmarshal(in.Bytes(), &expr); err != nil {
			fmt.Fprintf(os.Stderr, "promql-names: a line is not a JSON string: %v\n", err)
			os.Exit(2)
		}
		if err := out.Encode(names(expr)); err != nil {
			fmt.Fprintf(os.Stderr, "promql-names: %v\n", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "promql-names: %v\n", err)
		os.Exit(1)
	}
}
