import { Lazy } from 'aws-cdk-lib';
import { AccountRootPrincipal, Grant, type IGrantable, type IRole, PolicyStatement, Role } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import {
  ITEM_ACCESS_ACTIONS,
  OPENSEARCH_INDEX_ACTIONS,
  S3VECTORS_INDEX_ACTIONS,
  TENANT_SESSION_TAG,
  tenantLeadingKeyPatterns,
} from '../../contract/iam';
import { TENANT_INDEX_PREFIX } from '../../contract/search';
import type { FilesBucket } from './files-bucket';
import type { PlatformTable } from './platform-table';
import type { VectorBucket } from './vector-bucket';
import type { VectorSearch } from './vector-search';

export interface TenantAccessRoleProps {
  /** Tables keyed by `pk = TENANT#<id>` (and their local indexes) that tenant sessions reach, each only in its own partition. */
  readonly tenantTables: readonly PlatformTable[];
  /**
   * Tables whose tenant partition sessions may read (GetItem, Query) but never write: the registry,
   * for the tenant's own adapters.
   * @default - none
   */
  readonly readableTables?: readonly PlatformTable[];
  /**
   * The vector search domain: sessions reach their own `t-<tenantId>` index and, while an upgrade
   * needs it, read the shared index of earlier versions (where the adapter adds the tenant filter).
   * @default - no search access
   */
  readonly search?: { readonly domain: VectorSearch; readonly sharedIndex?: string };
  /**
   * The plane's S3 Vectors bucket: sessions reach their own `t-<tenantId>` index in it, and no other.
   * @default - no S3 Vectors access
   */
  readonly vectors?: VectorBucket;
  /**
   * The plane's files bucket: sessions reach the objects under their own prefix `<tenantId>/`, and list only that prefix.
   * @default - no files access
   */
  readonly files?: FilesBucket;
  /**
   * A silo's one tenant: sessions may carry only this tenant's tag.
   * @default - any one tenant id
   */
  readonly onlyTenant?: string;
}

/**
 * The role every handler assumes, with the session tag `tenantId`, before touching tenant data.
 * Its policies only name `${aws:PrincipalTag/tenantId}`: `dynamodb:LeadingKeys` pins each session
 * to `TENANT#<its tenant>`, so a handler bug that names another tenant's key is refused by IAM.
 * Only the roles given to `grantAssume` may assume it, and only with that one tag.
 */
export class TenantAccessRole extends Construct {
  public readonly role: IRole;
  private readonly trustedRoleArns: string[] = [];

  constructor(scope: Construct, id: string, props: TenantAccessRoleProps) {
    super(scope, id);
    if (props.tenantTables.length === 0) throw new Error('tenant access role needs at least one tenant table');
    const trusted = { ArnEquals: { 'aws:PrincipalArn': Lazy.list({ produce: () => this.trustedRoleArns }) } };
    const role = new Role(this, 'Role', {
      description: 'Tenant-scoped data access: sessions reach only the partition of their tenantId tag',
      assumedBy: new AccountRootPrincipal().withConditions(trusted),
    });
    role.assumeRolePolicy?.addStatements(
      new PolicyStatement({
        actions: ['sts:TagSession'],
        principals: [new AccountRootPrincipal()],
        conditions: {
          ...trusted,
          // The tenantId tag must be set, non-empty, and be the only tag.
          ...(props.onlyTenant === undefined
            ? { StringLike: { [`aws:RequestTag/${TENANT_SESSION_TAG}`]: '?*' } }
            : { StringEquals: { [`aws:RequestTag/${TENANT_SESSION_TAG}`]: props.onlyTenant } }),
          'ForAllValues:StringEquals': { 'aws:TagKeys': [TENANT_SESSION_TAG] },
        },
      }),
    );
    const ownPartition = {
      'ForAllValues:StringLike': {
        'dynamodb:LeadingKeys': tenantLeadingKeyPatterns(`\${aws:PrincipalTag/${TENANT_SESSION_TAG}}`),
      },
    };
    role.addToPolicy(
      new PolicyStatement({
        actions: [...ITEM_ACCESS_ACTIONS],
        resources: props.tenantTables.flatMap(({ table, indexNames }) => [
          table.tableArn,
          ...indexNames.map((indexName) => `${table.tableArn}/index/${indexName}`),
        ]),
        conditions: ownPartition,
      }),
    );
    if (props.readableTables?.length) {
      role.addToPolicy(
        new PolicyStatement({
          actions: ['dynamodb:GetItem', 'dynamodb:Query'],
          resources: props.readableTables.map(({ table }) => table.tableArn),
          conditions: ownPartition,
        }),
      );
    }
    if (props.vectors) {
      // Its own index of the plane's vector bucket, named from its session tag: no other is reachable.
      role.addToPolicy(
        new PolicyStatement({
          actions: S3VECTORS_INDEX_ACTIONS.map((action) => `s3vectors:${action}`),
          resources: [props.vectors.indexArn(`${TENANT_INDEX_PREFIX}\${aws:PrincipalTag/${TENANT_SESSION_TAG}}`)],
        }),
      );
    }
    // Its own prefix of the files bucket, named from its session tag.
    props.files?.grantTenantPrefix(role, TENANT_SESSION_TAG);
    if (props.search) {
      const { domain, sharedIndex } = props.search;
      const ownIndex = `${TENANT_INDEX_PREFIX}\${aws:PrincipalTag/${TENANT_SESSION_TAG}}`;
      role.addToPolicy(
        new PolicyStatement({
          actions: [...OPENSEARCH_INDEX_ACTIONS],
          resources: [domain.indexArn(ownIndex), domain.indexArn(`${ownIndex}/*`)],
        }),
      );
      if (sharedIndex) {
        role.addToPolicy(
          new PolicyStatement({
            actions: OPENSEARCH_INDEX_ACTIONS.filter((action) => action !== 'es:ESHttpDelete'),
            resources: [domain.indexArn(sharedIndex), domain.indexArn(`${sharedIndex}/*`)],
          }),
        );
      }
    }
    this.role = role;
  }

  /** Lets `grantee` assume this role with a `tenantId` session tag: its policy and this role's trust. */
  grantAssume(grantee: IGrantable & { role?: IRole }): Grant {
    const principalRole = grantee.role;
    if (!principalRole) throw new Error('only functions with a role may assume the tenant access role');
    this.trustedRoleArns.push(principalRole.roleArn);
    return Grant.addToPrincipal({
      grantee,
      actions: ['sts:AssumeRole', 'sts:TagSession'],
      resourceArns: [this.role.roleArn],
    });
  }
}
