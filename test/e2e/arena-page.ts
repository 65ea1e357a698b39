import type { Page } from 'playwright-core';
import type { InstanceSettings } from '../../web/src/components/arena-types.js';

/**
 * Drives the compare page's instance editors the way a user does: the first instance is edited in
 * place, every next one is a duplicate of the one before with some settings changed.
 */
export async function configureInstances(page: Page, instances: Partial<InstanceSettings>[]): Promise<void> {
  const editors = page.getByTestId('instance-editor');
  await editors.first().waitFor();
  for (let count = await editors.count(); count > 1; count--) {
    await page.getByLabel(`remove instance ${count}`, { exact: true }).click();
  }
  for (const [index, settings] of instances.entries()) {
    const n = index + 1;
    if (index > 0) await page.getByRole('button', { name: 'Duplicate' }).nth(index - 1).click();
    for (const [key, value] of Object.entries(settings)) {
      const field = page.getByLabel(`${key === 'system' ? 'system prompt' : key} of instance ${n}`, { exact: true });
      if (key === 'model') await field.selectOption(String(value));
      else await field.fill(String(value));
    }
  }
}

/** Types a prompt and sends it with the keyboard shortcut. */
export async function sendPrompt(page: Page, prompt: string): Promise<void> {
  const box = page.getByLabel('prompt', { exact: true });
  await box.fill(prompt);
  await box.press('Control+Enter');
}

/**
 * Records, on every change of the page, the length of each column's latest answer: a comparison that
 * streams shows both columns partly written at the same moment.
 */
export async function recordAnswerLengths(page: Page): Promise<() => Promise<number[][]>> {
  await page.evaluate(() => {
    const w = window as unknown as { __lengths: number[][] };
    w.__lengths = [];
    new MutationObserver(() => {
      w.__lengths.push([...document.querySelectorAll('[data-testid="answer"]')].map((e) => e.textContent?.length ?? 0));
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  return () => page.evaluate(() => (window as unknown as { __lengths: number[][] }).__lengths);
}
