package dav

import (
	"testing"

	"golang.org/x/net/webdav"
)

func TestParseIf(t *testing.T) {
	tests := []struct {
		in   string
		want []ifList
		bad  bool
	}{
		{in: `(<opaquelocktoken:a>)`, want: []ifList{{conds: []webdav.Condition{{Token: "opaquelocktoken:a"}}}}},
		{in: `(<opaquelocktoken:a> ["x"]) (Not <DAV:no-lock> ["x"])`, want: []ifList{
			{conds: []webdav.Condition{{Token: "opaquelocktoken:a"}, {ETag: `"x"`}}},
			{conds: []webdav.Condition{{Not: true, Token: "DAV:no-lock"}, {ETag: `"x"`}}},
		}},
		{in: `<http://h/dav/a> (<t1>) <http://h/dav/b> (Not ["e]"])`, want: []ifList{
			{tag: "http://h/dav/a", conds: []webdav.Condition{{Token: "t1"}}},
			{tag: "http://h/dav/b", conds: []webdav.Condition{{Not: true, ETag: `"e]"`}}},
		}},
		{in: `(`, bad: true},
		{in: `()`, bad: true},
		{in: `(<a>) <http://h/x> (<b>)`, bad: true},
		{in: `junk`, bad: true},
		{in: ``, bad: true},
	}
	for _, tt := range tests {
		got, err := parseIf(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseIf(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseIf(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("parseIf(%q) = %+v, want %+v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i].tag != tt.want[i].tag || len(got[i].conds) != len(tt.want[i].conds) {
				t.Errorf("parseIf(%q)[%d] = %+v, want %+v", tt.in, i, got[i], tt.want[i])
				continue
			}
			for j := range got[i].conds {
				if got[i].conds[j] != tt.want[i].conds[j] {
					t.Errorf("parseIf(%q)[%d][%d] = %+v, want %+v", tt.in, i, j, got[i].conds[j], tt.want[i].conds[j])
				}
			}
		}
	}
}
