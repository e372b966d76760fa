// Command kubecheck strict-decodes a multi-document YAML stream (what `helm template` prints)
// into Kubernetes' own types, with client-go's scheme: an unknown or duplicate field, a value of
// the wrong type, or a kind the scheme does not know fails the check, naming the object (kind,
// name, the template it came from) and the field.
//
//	helm template show deploy/helm/livestage | kubecheck        # or: kubecheck a.yaml b.yaml
//
// Exit status: 0 when every object decodes strictly, 1 when any does not (each one is listed on
// stderr), 2 on a usage or read error.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// header is what a document says about itself, read leniently to name it in an error.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// Problem is one document that does not decode strictly.
type Problem struct {
	Index  int    // 1-based position in the stream (empty documents not counted)
	Object string // "Kind name" (or what could be read of it)
	Source string // helm's "# Source:" comment, when there is one
	Err    error
}

func (p Problem) String() string {
	where := fmt.Sprintf("document %d", p.Index)
	if p.Source != "" {
		where += " (" + p.Source + ")"
	}
	return fmt.Sprintf("%s: %s: %v", where, p.Object, p.Err)
}

// Check decodes every document of r strictly; it returns how many objects it read and the
// problems it found.
func Check(r io.Reader) (int, []Problem, error) {
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	count := 0
	var problems []Problem
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return count, problems, nil
		}
		if err != nil {
			return count, problems, fmt.Errorf("reading the YAML stream: %w", err)
		}
		if isEmpty(doc) {
			continue
		}
		count++
		problem := Problem{Index: count, Source: source(doc)}
		var head header
		if err := yaml.Unmarshal(doc, &head); err != nil {
			problem.Object = "(unreadable)"
			problem.Err = fmt.Errorf("not a YAML mapping: %w", err)
			problems = append(problems, problem)
			continue
		}
		problem.Object = name(head)
		if head.APIVersion == "" || head.Kind == "" {
			problem.Err = errors.New("apiVersion and kind are required")
			problems = append(problems, problem)
			continue
		}
		if _, _, err := decoder.Decode(doc, nil, nil); err != nil {
			switch {
			case runtime.IsNotRegisteredError(err):
				problem.Err = fmt.Errorf("%s %s is not a kind client-go's scheme knows: %w",
					head.APIVersion, head.Kind, err)
			default:
				problem.Err = err
			}
			problems = append(problems, problem)
		}
	}
}

func name(head header) string {
	object := head.Kind
	if object == "" {
		object = "(no kind)"
	}
	switch {
	case head.Metadata.Namespace != "" && head.Metadata.Name != "":
		return object + " " + head.Metadata.Namespace + "/" + head.Metadata.Name
	case head.Metadata.Name != "":
		return object + " " + head.Metadata.Name
	default:
		return object + " (no metadata.name)"
	}
}

// isEmpty: only blank lines and comments (helm prints "---" before templates that render
// nothing).
func isEmpty(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

func source(doc []byte) string {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("# Source:")); ok {
			return string(bytes.TrimSpace(rest))
		}
	}
	return ""
}

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(os.Stderr, "usage: kubecheck [file ...]  (no file or -: read stdin)")
		os.Exit(2)
	}
	if len(args) == 0 {
		args = []string{"-"}
	}
	total, failed := 0, 0
	for _, path := range args {
		var in io.Reader = os.Stdin
		label := "stdin"
		if path != "-" {
			file, err := os.Open(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "kubecheck: %v\n", err)
				os.Exit(2)
			}
			defer file.Close()
			in, label = file, path
		}
		count, problems, err := Check(in)
		total += count
		for _, problem := range problems {
			fmt.Fprintf(os.Stderr, "kubecheck: %s: %s\n", label, problem)
		}
		failed += len(problems)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kubecheck: %s: %v\n", label, err)
			os.Exit(2)
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "kubecheck: %d of %d objects do not strict-decode\n", failed, total)
		os.Exit(1)
	}
	if total == 0 {
		fmt.Fprintln(os.Stderr, "kubecheck: no objects in the input")
		os.Exit(1)
	}
	fmt.Printf("kubecheck: %d objects strict-decode into client-go's types\n", total)
}
