import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { addPlatformStacks } from '../lib/platform-app';
import { printTable } from './chat';

const SILO_COUNTS = [1, 10, 100];

/**
 * `npm run bench -- synth`: the pool stack plus 1, 10 and 100 silo stacks synthesized as
 * `cdk synth` does (bundling, cdk-nag), with the time taken and the size of the templates.
 */
export async function benchSynth(): Promise<void> {
  const rows: string[][] = [];
  for (const silos of SILO_COUNTS) {
    const outdir = mkdtempSync(join(tmpdir(), 'bench-synth-'));
    try {
      const siloTenants = Array.from({ length: silos }, (_, i) => `silo-${String(i).padStart(3, '0')}`).join(',');
      const started = performance.now();
      const app = new App({ outdir, context: { siloTenants } });
      const { pool, silos: stacks } = addPlatformStacks(app);
      const assembly = app.synth();
      const seconds = (performance.now() - started) / 1000;
      const size = (stack: { artifactId: string }) =>
        statSync(join(assembly.directory, `${stack.artifactId}.template.json`)).size / 1024;
      const resources = (stack: { artifactId: string }) =>
        Object.keys(assembly.getStackArtifact(stack.artifactId).template.Resources).length;
      rows.push([
        String(silos),
        seconds.toFixed(1),
        size(pool).toFixed(0),
        size(stacks[0]).toFixed(0),
        String(resources(pool)),
        String(resources(stacks[0])),
        // each handler bundled once, its asset shared by every stack
        String(readdirSync(assembly.directory).filter((name) => name.startsWith('asset.')).length),
      ]);
      console.error(`done: ${silos} silos`);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  }
  printTable(
    [
      'silo stacks',
      'synth s',
      'pool template KB',
      'silo template KB',
      'pool resources',
      'silo resources',
      'bundled assets',
    ],
    rows,
  );
  console.log(
    '\nThe pool stack plus N silo stacks in one `cdk synth`, bundling and cdk-nag included, on this machine.',
  );
  console.log(`synth pool + ${SILO_COUNTS.at(-1)} silos: ${rows.at(-1)?.[1]} s`);
}
