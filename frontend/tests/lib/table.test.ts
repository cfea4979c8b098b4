// @vitest-environment node
import { filterRows, pageOf, sortRows, toCsv } from "../../src/lib/table";

const rows = [
  { id: "b", health: 50 },
  { id: "a", health: null },
  { id: "c", health: 90 },
  { id: "d", health: 50 },
];

describe("sortRows", () => {
  it("sorts numbers both ways with missing values last and ties stable", () => {
    expect(sortRows(rows, (r) => r.health, "asc").map((r) => r.id)).toEqual(["b", "d", "c", "a"]);
    expect(sortRows(rows, (r) => r.health, "desc").map((r) => r.id)).toEqual(["c", "b", "d", "a"]);
  });

  it("sorts text naturally", () => {
    const tags = [{ id: "FIC-10" }, { id: "FIC-9" }, { id: "fic-100" }];
    expect(sortRows(tags, (r) => r.id, "asc").map((r) => r.id)).toEqual(["FIC-9", "FIC-10", "fic-100"]);
  });
});

describe("filterRows and pageOf", () => {
  it("matches every word in any field, ignoring case", () => {
    const loops = [
      { id: "TIC-1", name: "Reactor temperature" },
      { id: "FIC-2", name: "Feed flow" },
    ];
    expect(filterRows(loops, "reactor TIC", (r) => [r.id, r.name]).map((r) => r.id)).toEqual(["TIC-1"]);
    expect(filterRows(loops, "  ", (r) => [r.id])).toHaveLength(2);
    expect(filterRows(loops, "steam", (r) => [r.id, r.name])).toHaveLength(0);
  });

  it("pages", () => {
    expect(pageOf([1, 2, 3, 4, 5], 2, 2)).toEqual([3, 4]);
  });
});

describe("toCsv", () => {
  it("quotes separators and quotes, defuses formulas, leaves blanks for nulls", () => {
    const csv = toCsv(
      [
        { a: 'say "hi", twice', b: null },
        { a: "=cmd()", b: -1.5 },
        { a: "-x", b: 0 },
      ],
      [
        { header: "a", value: (r) => r.a },
        { header: "b", value: (r) => r.b },
      ],
    );
    expect(csv).toBe('a,b\r\n"say ""hi"", twice",\r\n\'=cmd(),-1.5\r\n\'-x,0\r\n');
  });
});
