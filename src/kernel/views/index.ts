export {
  type CompileOptions,
  compileWorkspace,
  renderProblemFile,
  renderView,
  renderWorkspace,
  renderWorkspaceInput,
  ViewsOutOfDateError,
  type WorkspaceReport,
} from './compile.js';
export {
  loadProblemInput,
  loadWorkspaceInput,
  type ProblemInput,
  problemInputOf,
  RECENT_EVENTS,
  type WorkspaceInput,
} from './data.js';
export { headerLine, type ParsedHeader, parseHeader, type ViewFile, viewFile } from './header.js';
export { inline, mermaidLabel } from './markdown.js';
export { GRAPH_FILE, renderGraph } from './render-graph.js';
export { NEEDS_DIR, needPagePath, renderNeedPage } from './render-need.js';
export { PROBLEM_FILE, renderProblem } from './render-problem.js';
export { README_FILE, renderReadme } from './render-readme.js';
export {
  type SyncOptions,
  type SyncReport,
  syncViews,
  type ViewProblem,
  type ViewProblemKind,
} from './writer.js';
