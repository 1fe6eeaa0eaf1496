import type { Template } from 'aws-cdk-lib/assertions';

/** Each state machine's definition in a template, parsed (tokens as `token`), with its name when it has one. */
export function stateMachineDefinitions(template: Template) {
  return Object.values(template.findResources('AWS::StepFunctions::StateMachine')).map((machine) => ({
    name: machine.Properties.StateMachineName as string | undefined,
    definition: JSON.parse(
      (machine.Properties.DefinitionString['Fn::Join'][1] as unknown[])
        .map((part) => (typeof part === 'string' ? part : 'token'))
        .join(''),
    ),
  }));
}
