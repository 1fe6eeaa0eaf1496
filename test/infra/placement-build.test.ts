import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPlacementBuild } from '../../pipeline/placement-build';

/** The pipeline's build commands that read `cdk deploy --outputs-file`, on a file as the CDK CLI writes it. */
describe('placement build commands', () => {
  const resources = {
    region: 'eu-central-1',
    apiUrl: 'https://silo-api.example/prod',
    tenantTableName: 'silo-tenants',
    ledgerTableName: 'silo-ledger',
    auditTableName: 'silo-audit',
    documentTableName: 'silo-documents',
    opensearchEndpoint: 'https://silo-search.example',
    vectorBucketName: 'platform-silo-vectors',
    ingestQueueUrl: 'https://silo-queue.example/111111111111/silo-ingest',
  };
  const dir = mkdtempSync(join(tmpdir(), 'outputs-'));
  const outputsFile = join(dir, 'silo-outputs.json');
  writeFileSync(
    outputsFile,
    JSON.stringify({
      'Platform-silo-a-bank': {
        DefaultTenantApiOpenAiBaseUrl1234: `${resources.apiUrl}/v1`,
        DefaultPlaneResourcesABCD: JSON.stringify(resources),
      },
    }),
  );
  const run = async (...args: string[]) => {
    const lines: string[] = [];
    await runPlacementBuild(args, {}, (line) => lines.push(line));
    return lines;
  };

  it('prints the silo URL and resources the state machine passes on', async () => {
    expect(await run('silo-url', outputsFile)).toEqual([resources.apiUrl]);
    expect(JSON.parse((await run('silo-resources', outputsFile))[0])).toEqual(resources);
  });

  it('refuses an outputs file without the resources output, and a copy without SILO_RESOURCES', async () => {
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, JSON.stringify({ 'Platform-silo-a-bank': {} }));
    await expect(run('silo-url', empty)).rejects.toThrow(/no PlaneResources output/);
    await expect(run('copy', 'a-bank')).rejects.toThrow();
    await expect(run('deploy')).rejects.toThrow(/usage/);
  });
});
