package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLogFields checks every slog call in attachd, type-checked, for what
// docs/operations.md ("Logs") promises about field names:
//
//   - a duration is logged as a number whose unit is in its name
//     (duration_ms, retry_in_ms, grace_ms, …_seconds), never as a
//     time.Duration, whose text ("1.5s", "250ms") changes unit with its size;
//   - a name ending in _ms or _seconds holds a number;
//   - each name holds one kind of value (a number, a string, an error…)
//     wherever it is used.
func TestLogFields(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the whole module")
	}
	pkgs := modulePackages(t)
	kinds := map[string]map[string]string{} // field → kind → one place it was seen
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		return os.Open(pkgs.export[path])
	})
	checked := 0
	for _, p := range pkgs.own {
		if !importsSlog(p) {
			continue
		}
		var files []*ast.File
		for _, f := range p.GoFiles {
			af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, af)
		}
		info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}}
		conf := types.Config{Importer: imp.(types.ImporterFrom)}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-checking %s: %v", p.ImportPath, err)
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok {
					for _, kv := range slogFields(info, call) {
						checked++
						checkField(t, fset, info, kv, kinds)
					}
				}
				return true
			})
		}
	}
	t.Logf("%d log fields checked", checked)
	if checked < 50 {
		t.Fatalf("only %d log fields found: the check does not see the slog calls", checked)
	}
	if testing.Verbose() {
		names := slices.Sorted(maps.Keys(kinds))
		t.Logf("fields: %s", strings.Join(names, " "))
	}
	for name, ks := range kinds {
		if len(ks) > 1 {
			var where []string
			for k, pos := range ks {
				where = append(where, k+" at "+pos)
			}
			slices.Sort(where)
			t.Errorf("log field %q holds different kinds of value: %s", name, strings.Join(where, "; "))
		}
	}
}

// field is one key and value of a slog call.
type field struct {
	key   string
	value ast.Expr
	pos   token.Pos
}

// slogFields returns the constant-keyed fields of call if it is a slog
// logging call (a Logger's or the package's Debug…Error, Log, LogAttrs,
// With) or an Attr constructor (slog.String, slog.Duration…).
func slogFields(info *types.Info, call *ast.CallExpr) []field {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	fn, ok := info.Uses[sel.Sel].(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Pkg().Path() != "log/slog" {
		return nil
	}
	sig := fn.Type().(*types.Signature)
	name := fn.Name()
	if sig.Recv() == nil {
		switch name {
		case "String", "Int", "Int64", "Uint64", "Float64", "Bool", "Time", "Duration", "Any", "Group":
			if k, ok := constString(info, call.Args[0]); ok && len(call.Args) == 2 {
				return []field{{k, call.Args[1], call.Pos()}}
			}
			return nil
		}
	}
	if !sig.Variadic() || call.Ellipsis.IsValid() {
		return nil
	}
	switch name {
	case "Debug", "Info", "Warn", "Error", "DebugContext", "InfoContext", "WarnContext", "ErrorContext", "Log", "With":
	default:
		return nil // LogAttrs: its Attrs are constructor calls, seen on their own
	}
	args := call.Args[sig.Params().Len()-1:]
	var out []field
	for i := 0; i < len(args); i++ {
		if t := info.Types[args[i]].Type; t != nil && types.TypeString(t, nil) == "log/slog.Attr" {
			continue
		}
		k, ok := constString(info, args[i])
		if !ok || i+1 >= len(args) {
			continue
		}
		out = append(out, field{k, args[i+1], args[i].Pos()})
		i++
	}
	return out
}

func constString(info *types.Info, e ast.Expr) (string, bool) {
	tv := info.Types[e]
	if tv.Value == nil || tv.Value.Kind() != 2 { // constant.String
		return "", false
	}
	s := tv.Value.ExactString()
	return s[1 : len(s)-1], true
}

// checkField reports a field against the rules of TestLogFields.
func checkField(t *testing.T, fset *token.FileSet, info *types.Info, f field, kinds map[string]map[string]string) {
	t.Helper()
	pos := fset.Position(f.pos)
	pos.Filename, _ = filepath.Rel(mustWd(t), pos.Filename)
	where := pos.String()
	typ := info.Types[f.value].Type
	if call, ok := f.value.(*ast.CallExpr); ok {
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Duration" {
			if fn, ok := info.Uses[sel.Sel].(*types.Func); ok && fn.Pkg() != nil && fn.Pkg().Path() == "log/slog" {
				typ = types.Universe.Lookup("int").Type() // slog.Duration's value below
			}
		}
	}
	if typ == nil {
		return
	}
	kind := valueKind(typ)
	if kind == "duration" {
		t.Errorf("%s: log field %q is a time.Duration: log a number with its unit in the name (duration_ms, …_seconds)", where, f.key)
	}
	if (strings.HasSuffix(f.key, "_ms") || strings.HasSuffix(f.key, "_seconds")) && kind != "number" {
		t.Errorf("%s: log field %q names a unit but holds a %s", where, f.key, kind)
	}
	if kinds[f.key] == nil {
		kinds[f.key] = map[string]string{}
	}
	if _, ok := kinds[f.key][kind]; !ok {
		kinds[f.key][kind] = where
	}
}

// valueKind sorts a type into the kinds a log field may hold.
func valueKind(t types.Type) string {
	if types.TypeString(t, nil) == "time.Duration" {
		return "duration"
	}
	if types.Implements(t, types.Universe.Lookup("error").Type().Underlying().(*types.Interface)) {
		return "string" // an error is logged as its text
	}
	if b, ok := t.Underlying().(*types.Basic); ok {
		switch {
		case b.Info()&types.IsNumeric != 0:
			return "number"
		case b.Info()&types.IsString != 0:
			return "string"
		case b.Info()&types.IsBoolean != 0:
			return "bool"
		}
	}
	return "value"
}

type listedPackage struct {
	ImportPath, Dir, Export string
	GoFiles, Imports        []string
	Standard                bool
}

type modulePkgs struct {
	export map[string]string // import path → export data file
	own    []listedPackage   // attachd's packages
}

// modulePackages lists the module's packages and the export data of all
// they import, compiling what the build cache lacks.
func modulePackages(t *testing.T) modulePkgs {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles,Imports,Standard", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pk := modulePkgs{export: map[string]string{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pk.export[p.ImportPath] = p.Export
		if !p.Standard && strings.HasPrefix(p.ImportPath, "github.com/attachd/attachd") {
			pk.own = append(pk.own, p)
		}
	}
	return pk
}

func importsSlog(p listedPackage) bool { return slices.Contains(p.Imports, "log/slog") }

func mustWd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
