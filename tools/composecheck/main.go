// composecheck loads a Compose file with compose-go, the loader Docker Compose itself uses, the
// way `docker compose config` does: interpolation from the OS environment and the env files
// (`.env` beside the file by default), the Compose Specification's schema, normalization,
// consistency checks, and each service's env_file entries merged into its environment. It
// exits 1 with the loader's error when the file would be refused, and with -json prints the
// resolved project (what every container would get) as JSON.
//
//	composecheck [-json] [-env-file FILE]... [docker-compose.yml]
//
// No Docker engine is needed. Built by scripts/bootstrap.sh into .cache/bin/composecheck;
// tests/ops/test_compose.py runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

type envFiles []string

func (e *envFiles) String() string { return fmt.Sprint(*e) }

func (e *envFiles) Set(value string) error {
	*e = append(*e, value)
	return nil
}

func main() {
	var files envFiles
	printJSON := flag.Bool("json", false, "print the resolved project as JSON")
	flag.Var(&files, "env-file", "an interpolation env file like `docker compose --env-file` "+
		"(repeatable; default: .env beside the compose file, when present)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: composecheck [-json] [-env-file FILE]... [docker-compose.yml]")
		flag.PrintDefaults()
	}
	flag.Parse()
	path := "docker-compose.yml"
	switch flag.NArg() {
	case 0:
	case 1:
		path = flag.Arg(0)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err := run(path, files, *printJSON); err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %s: %v\n", path, err)
		os.Exit(1)
	}
}

func run(path string, files []string, printJSON bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	options, err := cli.NewProjectOptions(
		[]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithOsEnv,
		cli.WithEnvFiles(files...),
		cli.WithDotEnv,
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	if !printJSON {
		fmt.Printf("%s: %d services load\n", path, len(project.Services))
		return nil
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}
