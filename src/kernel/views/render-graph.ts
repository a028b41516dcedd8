import type { Need, NeedStatus } from '../../store/index.js';
import type { WorkspaceInput } from './data.js';
import { type ViewFile, viewFile } from './header.js';
import { code, compareText, mermaidLabel, priority } from './markdown.js';
import { workspaceSeq } from './render-readme.js';

export const GRAPH_FILE = 'graph.md';

const STATUS_STYLE: Readonly<Record<NeedStatus, string>> = {
  open: 'fill:#fff7e0,stroke:#b58100',
  active: 'fill:#e0f0ff,stroke:#0b62c4',
  resolved: 'fill:#e3f6e3,stroke:#2f8a2f',
  dropped: 'fill:#eeeeee,stroke:#888888,color:#666666',
};

/**
 * graph.md: a Mermaid `graph TD` of the `depends_on` edges among the workspace's needs. An arrow
 * points from a need to a need it depends on. Drawn: every open or active need, and every need
 * on such an edge; each node shows its title (escaped), status and priority, and is styled by
 * status. Nodes by priority, age, id; edges by source then target.
 *
 * The seq is that of workspaceSeq: the latest event about any need of the workspace, about one
 * its tags and scope match in a status it does not show or that left them, or about the workspace.
 */
export function renderGraph(input: WorkspaceInput): ViewFile {
  const members = new Map(input.needs.map((n) => [n.id, n]));
  const edges: [string, string][] = [];
  const onEdge = new Set<string>();
  for (const n of input.needs) {
    for (const d of input.dependencies.get(n.id) ?? []) {
      if (!members.has(d.to)) continue;
      edges.push([d.from, d.to]);
      onEdge.add(d.from);
      onEdge.add(d.to);
    }
  }
  edges.sort((a, b) => compareText(a[0], b[0]) || compareText(a[1], b[1]));
  const nodes = input.needs.filter((n) => n.status === 'open' || n.status === 'active' || onEdge.has(n.id));

  const out: string[] = [
    `# Dependency graph: workspace ${code(input.workspace.name)}`,
    '',
    `${nodes.length} ${nodes.length === 1 ? 'need' : 'needs'} and ${edges.length} ${edges.length === 1 ? 'dependency' : 'dependencies'}. An arrow points from a need to a need it depends on; resolved and dropped needs are drawn only when an edge touches them.`,
    '',
  ];
  if (nodes.length === 0) {
    out.push('Nothing to draw.', '');
    return viewFile(GRAPH_FILE, workspaceSeq(input), out.join('\n'));
  }
  out.push('```mermaid', 'graph TD');
  for (const n of nodes)
    out.push(`  ${n.id}["${mermaidLabel(n.title)}<br/>${n.status} · ${priority(n.priority)}"]`);
  for (const [from, to] of edges) out.push(`  ${from} --> ${to}`);
  const byStatus = new Map<NeedStatus, Need[]>();
  for (const n of nodes) {
    const list = byStatus.get(n.status);
    if (list) list.push(n);
    else byStatus.set(n.status, [n]);
  }
  for (const [status, style] of Object.entries(STATUS_STYLE) as [NeedStatus, string][]) {
    const list = byStatus.get(status);
    if (!list) continue;
    out.push(`  classDef status_${status} ${style}`);
    out.push(`  class ${list.map((n) => n.id).join(',')} status_${status}`);
  }
  out.push('```', '');
  return viewFile(GRAPH_FILE, workspaceSeq(input), out.join('\n'));
}
