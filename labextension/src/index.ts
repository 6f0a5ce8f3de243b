/**
 * "Submit for feedback": a toolbar button on notebooks and a command-palette entry.
 *
 * The command saves the notebook, asks this Jupyter server's extension
 * (coursekit/feedback_ext.py, under /seqcourse-feedback/) to send it to the course's
 * feedback service, shows the queue position while the attempt waits and then the
 * verdict per unit. The server extension holds the service's URL and the student's
 * token, so the browser needs neither CORS nor the token.
 *
 * Everything shown comes from the service (check names, messages): it is put on the
 * page as text (textContent), never as HTML.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookModel,
  INotebookTracker,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ToolbarButton } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

const COMMAND = 'seqcourse-feedback:submit';
const LABEL = 'Submit for feedback';
const API = 'seqcourse-feedback';
const POLL_MS = 1000;
const POLL_MAX_MS = 5000;
const GIVE_UP_MS = 30 * 60 * 1000; // a verdict takes seconds; half an hour means something is wrong

/** One check of a unit, as the service shows it (fields absent when hidden). */
interface ICheck {
  name?: string;
  passed?: boolean;
  message?: string;
}

/** One graded unit (a grade cell). */
interface IUnit {
  grade_id?: string;
  points?: number | null;
  max_points?: number | null;
  held?: boolean;
  checks?: ICheck[];
}

/** GET /api/attempts/{id} of the pinned interface. */
interface IAttempt {
  attempt: number | string;
  assignment?: string;
  student?: string;
  status: 'queued' | 'running' | 'graded' | 'failed' | string;
  score?: number | null;
  max_score?: number | null;
  units?: IUnit[];
  reason?: string | null;
  position?: number | null;
}

/** What the server extension answers when the service refused or was unreachable. */
interface IRefusal {
  status: number;
  message: string;
  retry_after?: number | null;
}

class Refused extends Error {
  constructor(readonly refusal: IRefusal) {
    super(refusal.message);
  }
}

/** A request to this server's feedback extension; JSON back, or Refused. */
async function callServer<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, API, path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new Refused({
      status: 0,
      message: `Could not reach this Jupyter server: ${error}`
    });
  }
  let body: any = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (body && typeof body.message === 'string') {
      throw new Refused(body as IRefusal);
    }
    const hint =
      response.status === 404
        ? ' (is the server extension coursekit.feedback_ext enabled? `jupyter server extension list`)'
        : '';
    throw new Refused({
      status: response.status,
      message: `The Jupyter server answered ${response.status} ${response.statusText}${hint}`
    });
  }
  return body as T;
}

/** A small DOM helper: an element with text (never HTML) and a class. */
function el(
  tag: string,
  text?: string,
  className?: string,
  parent?: HTMLElement
): HTMLElement {
  const node = document.createElement(tag);
  if (text !== undefined) {
    node.textContent = text;
  }
  if (className) {
    node.className = className;
  }
  parent?.appendChild(node);
  return node;
}

function points(got?: number | null, max?: number | null): string {
  const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
  if (got === undefined || got === null) {
    return max === undefined || max === null ? '' : `? / ${fmt(max)}`;
  }
  return max === undefined || max === null
    ? fmt(got)
    : `${fmt(got)} / ${fmt(max)}`;
}

/** The body of the feedback dialog; its content is replaced as the attempt advances. */
class FeedbackBody extends Widget {
  constructor(readonly notebookPath: string) {
    super();
    this.addClass('seqcourse-feedback');
    this.showStatus('Saving the notebook…');
  }

  private reset(): HTMLElement {
    this.node.textContent = '';
    el('div', this.notebookPath, 'seqcourse-feedback-path', this.node);
    return this.node;
  }

  showStatus(text: string): void {
    el('p', text, 'seqcourse-feedback-status', this.reset());
  }

  showWaiting(attempt: IAttempt | null, id: string, position: number | null): void {
    const root = this.reset();
    const state = attempt?.status ?? 'queued';
    const where =
      state === 'running'
        ? 'Running: the hidden checks are grading your notebook…'
        : position !== null && position !== undefined
          ? `Queued: position ${position} in the queue…`
          : 'Queued…';
    el('p', where, 'seqcourse-feedback-status', root).dataset.state = state;
    el('p', `Attempt ${id}`, 'seqcourse-feedback-attempt', root);
  }

  showRefusal(refusal: IRefusal): void {
    const root = this.reset();
    const p = el('p', refusal.message, 'seqcourse-feedback-error', root);
    p.dataset.status = String(refusal.status);
    if (refusal.retry_after !== undefined && refusal.retry_after !== null) {
      el(
        'p',
        `Retry-After: ${refusal.retry_after} s`,
        'seqcourse-feedback-retry',
        root
      );
    }
  }

  showVerdict(attempt: IAttempt): void {
    const root = this.reset();
    const head = el('p', '', 'seqcourse-feedback-status', root);
    head.dataset.state = attempt.status;
    if (attempt.status === 'failed') {
      head.textContent = `Grading failed${attempt.reason ? `: ${attempt.reason}` : '.'}`;
      head.classList.add('seqcourse-feedback-error');
      return;
    }
    head.textContent = `Graded (attempt ${attempt.attempt}${attempt.assignment ? `, ${attempt.assignment}` : ''})`;
    const total = points(attempt.score, attempt.max_score);
    if (total) {
      el('p', `Score: ${total}`, 'seqcourse-feedback-score', root);
    }
    if (attempt.reason) {
      el('p', attempt.reason, 'seqcourse-feedback-reason', root);
    }
    const units = attempt.units ?? [];
    if (units.length === 0) {
      el('p', 'No details are shown for this assignment now.', 'seqcourse-feedback-note', root);
    }
    for (const unit of units) {
      const box = el('div', undefined, 'seqcourse-feedback-unit', root);
      box.dataset.gradeId = unit.grade_id ?? '';
      const title = el('div', undefined, 'seqcourse-feedback-unit-title', box);
      el('span', unit.grade_id ?? 'unit', 'seqcourse-feedback-unit-name', title);
      el('span', points(unit.points, unit.max_points), 'seqcourse-feedback-unit-points', title);
      if (unit.held) {
        el('p', 'Held for your instructor’s review: these points count once they have read this part of your code.',
           'seqcourse-feedback-held', box);
      }
      const checks = unit.checks ?? [];
      if (checks.length === 0) {
        continue;
      }
      const list = el('ul', undefined, 'seqcourse-feedback-checks', box);
      for (const check of checks) {
        const item = el('li', undefined, 'seqcourse-feedback-check', list);
        const passed = check.passed === true;
        item.dataset.passed = String(passed);
        el('span', passed ? '✔ passed' : '✘ failed', 'seqcourse-feedback-mark', item);
        if (check.name) {
          el('span', check.name, 'seqcourse-feedback-check-name', item);
        }
        if (check.message) {
          el('div', check.message, 'seqcourse-feedback-message', item);
        }
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

/** Save, submit, wait, show: the whole command for one notebook. */
async function submitForFeedback(panel: NotebookPanel): Promise<void> {
  const path = panel.context.path;
  const body = new FeedbackBody(path);
  let open = true;
  const dialog = showDialog({
    title: LABEL,
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  }).then(() => {
    open = false;
  });
  let finalAttempt: IAttempt | null = null;
  try {
    await panel.context.save();
    body.showStatus('Sending the notebook to the feedback service…');
    const queued = await callServer<{ attempt: number | string; position: number | null; assignment?: string }>(
      'attempts',
      { method: 'POST', body: JSON.stringify({ path }) }
    );
    const id = String(queued.attempt);
    let position: number | null = queued.position ?? null;
    body.showWaiting(null, id, position);
    const start = Date.now();
    let wait = POLL_MS;
    for (;;) {
      const attempt = await callServer<IAttempt>(`attempts/${encodeURIComponent(id)}`);
      if (attempt.position !== undefined && attempt.position !== null) {
        position = attempt.position;
      }
      if (attempt.status === 'graded' || attempt.status === 'failed') {
        finalAttempt = attempt;
        body.showVerdict(attempt);
        break;
      }
      body.showWaiting(attempt, id, position);
      if (Date.now() - start > GIVE_UP_MS) {
        throw new Refused({
          status: 0,
          message: `No verdict for attempt ${id} after ${GIVE_UP_MS / 60000} minutes; ask the instructor.`
        });
      }
      await sleep(wait);
      wait = Math.min(POLL_MAX_MS, wait * 1.5);
    }
  } catch (error) {
    const refusal =
      error instanceof Refused
        ? error.refusal
        : { status: 0, message: `Submit for feedback failed: ${error}` };
    body.showRefusal(refusal);
    if (!open) {
      Notification.error(refusal.message, { autoClose: false });
    }
    return;
  }
  if (!open && finalAttempt) {
    // The student closed the dialog while waiting: say that the verdict came.
    const attempt = finalAttempt;
    Notification.info(`Feedback ready for ${path}: ${points(attempt.score, attempt.max_score) || attempt.status}`, {
      autoClose: false,
      actions: [
        {
          label: 'Show',
          callback: () => {
            const again = new FeedbackBody(path);
            again.showVerdict(attempt);
            void showDialog({ title: LABEL, body: again, buttons: [Dialog.okButton({ label: 'Close' })] });
          }
        }
      ]
    });
  }
  await dialog;
}

/** Puts the button into every notebook's toolbar. */
class ToolbarExtension
  implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel>
{
  constructor(private readonly app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      className: 'seqcourse-feedback-button',
      label: LABEL,
      tooltip: 'Save this notebook and get the hidden checks’ verdict from the course’s feedback service',
      onClick: () => {
        void this.app.commands.execute(COMMAND);
      }
    });
    panel.toolbar.addItem('seqcourseSubmitFeedback', button);
    return button;
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@seqcourse/feedback:plugin',
  description: 'Submit for feedback: the hidden checks’ verdict while you work',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null
  ) => {
    app.commands.addCommand(COMMAND, {
      label: LABEL,
      caption: 'Save the notebook and send it to the course’s feedback service',
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const panel = tracker.currentWidget;
        if (panel) {
          await submitForFeedback(panel);
        }
      }
    });
    palette?.addItem({ command: COMMAND, category: 'Course' });
    app.docRegistry.addWidgetExtension('Notebook', new ToolbarExtension(app));
  }
};

export default plugin;
